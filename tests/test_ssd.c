/* test_ssd.c - the Mamba-2 SSD core (nn/ssd.h): chunked fast path vs the sequential reference and a
 * double-precision oracle, gradchecks of both, step == chunked, padding invariance, saved memory, errors,
 * determinism across thread counts. Shared bodies and tolerances: tests/linear_mixers_util.h. */
#include "linear_mixers_util.h"
#include "nn/ssd.h"

Test(ssd, fast_matches_reference_and_fp64_oracle, .timeout = 60)
{
    lm_check_all(LM_SSD, ox_nn_ssd, ox_nn_ssd_reference, 0);
}

Test(ssd, gradcheck_fast, .timeout = 60)
{
    lm_gradcheck(LM_SSD, ox_nn_ssd);
}

Test(ssd, gradcheck_reference, .timeout = 60)
{
    lm_gradcheck(LM_SSD, ox_nn_ssd_reference);
}

Test(ssd, step_matches_chunked)
{
    lm_step_matches_chunked(LM_SSD, ox_nn_ssd, ox_nn_ssd_step);
}

Test(ssd, padding_invariance)
{
    lm_padding_invariance(LM_SSD, ox_nn_ssd);
}

Test(ssd, saves_only_chunk_states)
{
    lm_saved_bytes(LM_SSD, ox_nn_ssd);
    lm_saved_bytes(LM_SSD, ox_nn_ssd_reference);
}

Test(ssd, bad_shapes_are_errors)
{
    lm_bad_shapes(ox_nn_ssd, ox_nn_ssd_step);
}

Test(ssd, threads_bit_identical)
{
    lm_threads_bit_identical(LM_SSD, ox_nn_ssd);
}

Test(ssd, fp64_oracle_matches_finite_differences)
{
    lm_oracle_fd(LM_SSD);
}

Test(ssd, null_state_arguments)
{
    lm_null_state(LM_SSD, ox_nn_ssd);
}
