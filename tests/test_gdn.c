/* test_gdn.c - the Gated DeltaNet core (nn/gdn.h): chunked WY/UT fast path vs the sequential reference and
 * a double-precision oracle (model-like and stress inputs), gradchecks of both, step == chunked, padding
 * invariance, saved memory, errors, determinism across thread counts; and l2norm (nn/l2norm.h). Shared
 * bodies and tolerances: tests/linear_mixers_util.h. */
#include "linear_mixers_util.h"
#include "nn/gdn.h"

Test(gdn, fast_matches_reference_and_fp64_oracle, .timeout = 60)
{
    lm_check_all(LM_GDN, ox_nn_gdn, ox_nn_gdn_reference, 0);
}

/* MODELS.md 11 item 2: near-duplicate keys, beta = 0.98, slow decay (I + A least well conditioned). */
Test(gdn, stress_inputs_match_fp64_oracle, .timeout = 60)
{
    lm_check_all(LM_GDN, ox_nn_gdn, ox_nn_gdn_reference, 1);
}

Test(gdn, gradcheck_fast, .timeout = 60)
{
    lm_gradcheck(LM_GDN, ox_nn_gdn);
}

Test(gdn, gradcheck_reference, .timeout = 60)
{
    lm_gradcheck(LM_GDN, ox_nn_gdn_reference);
}

Test(gdn, step_matches_chunked)
{
    lm_step_matches_chunked(LM_GDN, ox_nn_gdn, ox_nn_gdn_step);
}

Test(gdn, padding_invariance)
{
    lm_padding_invariance(LM_GDN, ox_nn_gdn);
}

Test(gdn, saves_only_chunk_states)
{
    lm_saved_bytes(LM_GDN, ox_nn_gdn);
    lm_saved_bytes(LM_GDN, ox_nn_gdn_reference);
}

Test(gdn, bad_shapes_are_errors)
{
    lm_bad_shapes(ox_nn_gdn, ox_nn_gdn_step);
}

Test(gdn, threads_bit_identical)
{
    lm_threads_bit_identical(LM_GDN, ox_nn_gdn);
}
