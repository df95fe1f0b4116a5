/* 03_char_rnn.c - tutorial 3: a character-level recurrent network trained with truncated backpropagation.
 *
 * A recurrent model is a loop in the forward pass: the same weights are applied at every time step, and
 * the tape simply records every step, so backward differentiates through time (BPTT) with no extra code.
 * What it teaches, in order:
 *   1. text as integer tokens (one per byte value that occurs in the file);
 *   2. a tanh RNN cell written with autograd ops, unrolled over T steps, with the output layer applied
 *      once to all T steps (a concat of the hidden states, then one GEMM);
 *   3. truncated BPTT: the hidden state carries over from one chunk to the next as a plain copy that does
 *      not require a gradient, so each backward pass stops at the chunk boundary;
 *   4. evaluation (held-out loss) and greedy generation in a no-grad scope.
 * The model:
 *     h_t = tanh(E[c_t] + h_{t-1} Wh^T + bh)        E [V, H], Wh [H, H], bh [H]
 *     logits_t = h_t Wy^T + by                      Wy [V, H], by [V]: a score for every next character
 * Row c of E plays the role of W_x times the one-hot vector of character c (a lookup, not a matmul).
 *
 * Run it from the repository root (it reads data/tinyshakespeare.txt; a few seconds):
 *     make && build/examples/03_char_rnn            [--quick] [--threads N]
 * --quick trains for fewer steps (what the test suite runs); --threads sets the thread count (default 1).
 * Under AddressSanitizer:
 *     make BUILD=build/asan SAN=1 build/asan/examples/03_char_rnn && build/asan/examples/03_char_rnn --quick
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"         /* ox_ag_* ops, no-grad scope */
#include "nn/cross_entropy.h"     /* ox_nn_cross_entropy */
#include "nn/embedding.h"         /* ox_nn_embedding_t: the table E */
#include "nn/linear.h"            /* ox_nn_linear_t: Wh and Wy */
#include "nn/param.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "tensor/rng.h"
#include "tensor/ctx.h"

static const char *DATA_PATH = "data/tinyshakespeare.txt";   /* relative to the repository root */

enum {
    HIDDEN    = 128,      /* H: size of the hidden state */
    BATCH     = 32,       /* B: independent streams of text trained side by side */
    SEQ       = 32,       /* T: time steps per chunk (how far back each backward pass reaches) */
    TRAIN_LEN = 400000,   /* the training slice: the file's first 400k characters */
    EVAL_LEN  = 16384,    /* the held-out slice: the characters right after it */
    SAMPLE    = 160       /* characters generated at the end */
};

static void die(ox_ctx *ctx, const char *what)
{
    fprintf(stderr, "03_char_rnn: %s failed: %s\n", what, ctx ? ox_ctx_message(ctx) : "out of memory");
    exit(1);
}

/* ---- 1. Data ------------------------------------------------------------------------------------------
 * The whole file is read into memory (1 MB). The vocabulary is every byte value that occurs in it, in
 * increasing order; `id_of` maps a byte to its token id and `byte_of` maps back. */
struct text {
    unsigned char *bytes;
    long len;
    int vocab;                  /* V */
    int id_of[256];             /* -1 for a byte that never occurs */
    unsigned char byte_of[256];
};

static void text_load(struct text *tx, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "03_char_rnn: cannot open %s: %s (run the program from the repository root)\n", path,
                strerror(errno));
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    tx->len = ftell(f);
    fseek(f, 0, SEEK_SET);
    tx->bytes = malloc(tx->len > 0 ? (size_t)tx->len : 1);     /* programs may malloc; the library does not */
    if (!tx->bytes || fread(tx->bytes, 1, (size_t)tx->len, f) != (size_t)tx->len) {
        fprintf(stderr, "03_char_rnn: cannot read %s\n", path);
        fclose(f);
        free(tx->bytes);
        exit(1);
    }
    fclose(f);
    if (tx->len < TRAIN_LEN + EVAL_LEN) {
        fprintf(stderr, "03_char_rnn: %s has %ld bytes, need at least %d\n", path, tx->len, TRAIN_LEN + EVAL_LEN);
        free(tx->bytes);
        exit(1);
    }
    int seen[256] = { 0 };
    for (long i = 0; i < tx->len; i++)
        seen[tx->bytes[i]] = 1;
    tx->vocab = 0;
    for (int c = 0; c < 256; c++) {
        tx->id_of[c] = seen[c] ? tx->vocab : -1;
        if (seen[c])
            tx->byte_of[tx->vocab++] = (unsigned char)c;
    }
}

/* ---- 2. The model ------------------------------------------------------------------------------------- */
struct rnn {
    ox_nn_params ps;            /* owns all parameters and gradients */
    ox_nn_embedding_t emb;      /* E [V, H] */
    ox_nn_linear_t wh, wy;      /* Wh [H, H], Wy [V, H] */
    ox_tensor *bh, *by;         /* [H], [V]; borrowed from ps */
};

static void rnn_init(ox_ctx *ctx, struct rnn *m, int vocab, ox_rng *rng)
{
    ox_nn_params_init(&m->ps);
    /* E's rows feed tanh directly: std 0.3 puts them in tanh's responsive range. Wh with std 1/sqrt(H)
     * keeps the recurrence from blowing up or dying out at the start; the same scale for Wy gives
     * initial logits of order 0.5, so the first loss is close to log(V) (a uniform guess). */
    ox_nn_embedding_init(ctx, &m->ps, &m->emb, "embed", vocab, HIDDEN, 0.3, rng);
    ox_nn_linear_init(ctx, &m->ps, &m->wh, "rnn.wh", HIDDEN, HIDDEN, 1.0 / sqrt(HIDDEN), rng);
    ox_nn_linear_init(ctx, &m->ps, &m->wy, "head", HIDDEN, vocab, 1.0 / sqrt(HIDDEN), rng);
    m->bh = ox_nn_params_add(ctx, &m->ps, "rnn.bias", OX_DIMS(HIDDEN), OX_NN_NO_DECAY);
    m->by = ox_nn_params_add(ctx, &m->ps, "head.bias", OX_DIMS(vocab), OX_NN_NO_DECAY);
    if (ox_ctx_status(ctx))
        die(ctx, "model init");
}

/* One step of the recurrence: x_t [B, H] (the rows E[c_t]), h [B, H] -> the new h [B, H]. */
static ox_tensor *rnn_cell(ox_ctx *ctx, struct rnn *m, ox_tensor *x_t, ox_tensor *h)
{
    return ox_ag_tanh(ctx, ox_ag_add(ctx, ox_ag_add(ctx, x_t, ox_nn_linear_forward(ctx, &m->wh, h)), m->bh));
}

/* The unrolled forward pass over one chunk.
 *   tokens [T + 1, B] (I32, time-major, T = SEQ): inputs are rows 0..T-1, targets rows 1..T (the next character).
 *   h0 [B, H]: the state the chunk starts from.
 * Returns the mean cross-entropy over the T * B predictions and sets *h_last [B, H] (arena tensors). */
static ox_tensor *rnn_chunk_loss(ox_ctx *ctx, struct rnn *m, const ox_tensor *tokens, ox_tensor *h0,
                                 ox_tensor **h_last)
{
    const int64_t T = SEQ;   /* tokens is always [SEQ + 1, B] here: hs below has room for SEQ states */
    ox_tensor *inputs = ox_tensor_view_narrow(ctx, tokens, 0, 0, T);          /* [T, B], a view */
    ox_tensor *targets = ox_tensor_view_narrow(ctx, tokens, 0, 1, T);         /* [T, B], a view */
    /* All T * B embedding rows at once: [T, B, H]. select(x, 0, t) is the [B, H] slice of step t. */
    ox_tensor *x = ox_nn_embedding_forward(ctx, &m->emb, inputs);
    ox_tensor *hs[SEQ];
    ox_tensor *h = h0;
    for (int64_t t = 0; t < T; t++)
        hs[t] = h = rnn_cell(ctx, m, ox_ag_select(ctx, x, 0, t), h);
    *h_last = h;
    /* The output layer does not depend on the recurrence, so it runs once for all steps: stack the T
     * states into [T * B, H] (time-major) and apply one [T*B, H] x [H, V] GEMM. Reshaping the logits
     * to [T, B, V] lines them up with the targets [T, B] (a strided view: cross-entropy accepts it). */
    ox_tensor *logits = ox_ag_add(ctx, ox_nn_linear_forward(ctx, &m->wy, ox_ag_concat(ctx, (int)T, hs, 0)),
                                  m->by);
    logits = ox_ag_reshape(ctx, logits, OX_DIMS(T, tokens->shape[1], m->emb.vocab));
    return ox_nn_cross_entropy(ctx, logits, targets, -1);
}

/* tokens[t, b] = id of text[start[b] + t] for t = 0..T (T + 1 rows: inputs and shifted targets). */
static void fill_chunk(const struct text *tx, ox_tensor *tokens, const long *start)
{
    int64_t rows = tokens->shape[0], B = tokens->shape[1];
    for (int64_t t = 0; t < rows; t++)
        for (int64_t b = 0; b < B; b++)
            ox_tensor_i32(tokens)[t * B + b] = tx->id_of[tx->bytes[start[b] + t]];
}

/* ---- 4a. Held-out loss ------------------------------------------------------------------------------
 * The EVAL_LEN characters after the training slice, as B streams read chunk by chunk with the state
 * carried over, exactly as in training but in a no-grad scope (nothing recorded, nothing to free
 * but the arena). */
static double heldout_loss(ox_ctx *ctx, struct rnn *m, const struct text *tx)
{
    const long seg = EVAL_LEN / BATCH, chunks = (seg - 1) / SEQ;
    long start[BATCH];
    double total = 0;
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    ox_tensor *h = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(BATCH, HIDDEN));
    for (long c = 0; c < chunks; c++) {
        for (int b = 0; b < BATCH; b++)
            start[b] = TRAIN_LEN + b * seg + c * SEQ;
        ox_tensor *tokens = ox_tensor_empty(ctx, OX_I32, OX_DIMS(SEQ + 1, BATCH));
        if (!tokens)
            break;
        fill_chunk(tx, tokens, start);
        ox_tensor *loss = rnn_chunk_loss(ctx, m, tokens, h, &h);   /* h: the state for the next chunk */
        if (!loss)
            break;
        total += ox_tensor_f32(loss)[0];
    }
    ox_ag_set_grad_enabled(ctx, prev);
    if (ox_ctx_status(ctx))
        die(ctx, "held-out evaluation");
    ox_ctx_reset(ctx);   /* the states above lived in the arena; nothing is kept */
    return total / (double)chunks;
}

/* ---- 4b. Greedy generation ---------------------------------------------------------------------------
 * Feed the prompt one character at a time (B = 1), then repeatedly append the most likely next
 * character. Greedy decoding is deterministic; it tends to fall into loops (a sampler would draw from
 * softmax(logits) instead), but it shows plainly what the model has learnt. */
static void generate(ox_ctx *ctx, struct rnn *m, const struct text *tx, const char *prompt)
{
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    ox_tensor *h = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(1, HIDDEN));
    ox_tensor *tok = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1));
    if (!tok)
        die(ctx, "generation");
    printf("greedy sample: \"%s", prompt);
    const int plen = (int)strlen(prompt);
    int id = tx->id_of[(unsigned char)prompt[0]];
    for (int i = 1; i < plen + SAMPLE; i++) {
        ox_tensor_i32(tok)[0] = id;
        h = rnn_cell(ctx, m, ox_nn_embedding_forward(ctx, &m->emb, tok), h);      /* [1, H] */
        if (i < plen) {                                   /* still reading the prompt */
            id = tx->id_of[(unsigned char)prompt[i]];
            continue;
        }
        ox_tensor *logits = ox_ag_add(ctx, ox_nn_linear_forward(ctx, &m->wy, h), m->by);   /* [1, V] */
        if (!logits)
            die(ctx, "generation");
        id = 0;
        for (int v = 1; v < tx->vocab; v++)
            if (ox_tensor_f32(logits)[v] > ox_tensor_f32(logits)[id])
                id = v;
        putchar(tx->byte_of[id]);
    }
    printf("\"\n");
    ox_ag_set_grad_enabled(ctx, prev);
    if (ox_ctx_status(ctx))
        die(ctx, "generation");
    ox_ctx_reset(ctx);
}

int main(int argc, char **argv)
{
    ox_omp_bound_spin(argv);   /* idle OpenMP threads must not hold a core another process needs (tensor/ctx.h) */
    /* Threads: 1 by default. This model is tiny (every op touches a few thousand floats), so a step is
     * a long chain of small ops; splitting them across cores costs more in synchronisation than it
     * saves, and on a busy machine much more. ox_ctx_set_threads is the one knob: try --threads 2. */
    int quick = 0, threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--threads N]\n", argv[0]);
            return 2;
        }
    }
    const int64_t steps = quick ? 150 : 400, warmup = 20, log_every = quick ? 25 : 50;
    const double lr_max = 1e-2, lr_min = 5e-4, clip = 1.0;

    struct text tx;
    text_load(&tx, DATA_PATH);
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx) {
        free(tx.bytes);
        die(NULL, "ox_ctx_new");
    }
    ox_ctx_set_threads(ctx, threads);
    ox_rng rng = ox_rng_seed(7);
    struct rnn m;
    rnn_init(ctx, &m, tx.vocab, &rng);
    printf("%s: %ld characters, vocabulary of %d; training on the first %d, %lld steps of %d x %d characters\n",
           DATA_PATH, tx.len, tx.vocab, TRAIN_LEN, (long long)steps, BATCH, SEQ);
    printf("a uniform guess scores log(V) = %.4f\n", log((double)tx.vocab));

    ox_optim_adamw *opt = ox_optim_adamw_new(ctx, &m.ps, ox_optim_adamw_defaults());
    /* ---- 3. Truncated BPTT ---------------------------------------------------------------------------
     * The training slice is cut into B equal segments, one per stream; each step reads the next T
     * characters of every stream. The final hidden state of a chunk is copied into `carry`, an owned
     * tensor that does NOT require a gradient: the next chunk starts from the right state, but its
     * backward pass stops there, so memory and time per step stay bounded however long the text. */
    ox_tensor *carry = ox_tensor_new_owned(ctx, OX_F32, OX_DIMS(BATCH, HIDDEN));   /* zeros */
    if (!opt || !carry)
        die(ctx, "optimizer / state allocation");
    const long seg = TRAIN_LEN / BATCH;
    long pos = 0, start[BATCH];
    double loss_sum = 0, first_loss = 0, last_avg = 0;
    for (int64_t step = 0; step < steps; step++) {
        if (pos + SEQ + 1 > seg) {          /* end of the segments: start over from a zero state */
            pos = 0;
            ox_tensor_fill(ctx, carry, 0.0);
        }
        for (int b = 0; b < BATCH; b++)
            start[b] = b * seg + pos;
        pos += SEQ;
        ox_tensor *tokens = ox_tensor_empty(ctx, OX_I32, OX_DIMS(SEQ + 1, BATCH));
        if (!tokens)
            die(ctx, "batch allocation");
        fill_chunk(&tx, tokens, start);

        ox_tensor *h_last;
        ox_tensor *loss = rnn_chunk_loss(ctx, &m, tokens, carry, &h_last);
        if (!loss)
            die(ctx, "forward");
        float value = ox_tensor_f32(loss)[0];
        if (step == 0) {
            first_loss = value;
            printf("step %4d  loss %.4f\n", 1, value);
        }
        loss_sum += value;
        /* Backward through all T steps of the chunk (the tape recorded each one). A tanh RNN's
         * gradients can grow fast through time: clipping the global norm at 1 keeps steps sane. */
        if (ox_ag_backward(ctx, loss) || ox_optim_clip_grad_norm(ctx, &m.ps, clip, NULL)
            || ox_optim_adamw_step(ctx, opt, (float)ox_optim_lr_cosine(step, warmup, steps, lr_max, lr_min)))
            die(ctx, "backward / update");
        /* Keep the state (a copy: not recorded), then free the chunk's activations and tape. */
        if (ox_tensor_copy(ctx, carry, h_last))
            die(ctx, "state copy");
        ox_nn_params_zero_grad(&m.ps);
        ox_ctx_reset(ctx);

        if ((step + 1) % log_every == 0) {
            last_avg = loss_sum / (double)log_every;
            printf("step %4lld  loss %.4f  (mean of the last %lld steps)\n", (long long)(step + 1), last_avg,
                   (long long)log_every);
            loss_sum = 0;
        }
    }
    double eval = heldout_loss(ctx, &m, &tx);
    printf("training loss: %.4f -> %.4f\n", first_loss, last_avg);
    printf("held-out loss: %.4f\n", eval);
    generate(ctx, &m, &tx, "ROMEO:\n");

    ox_tensor_free(carry);
    ox_optim_adamw_free(opt);
    ox_nn_params_free(&m.ps);
    ox_ctx_free(ctx);
    free(tx.bytes);
    return 0;
}
