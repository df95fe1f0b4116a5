/* cli.h - shared pieces of the bin/oryx program: exit codes, the one-line error reporter, number parsing
 * for flags, the data file reader, checkpoint file names, and mode SPEC parsing (what every subcommand
 * uses). The program is the only place that prints or exits; the library below it never does.
 *
 * Exit codes (scripts and tests rely on them):
 *   0   success
 *   1   a failure while running (the library reported an error mid-way, a file could not be written)
 *   2   a bad command line: unknown flag, a value that does not parse, unknown preset, nonsense sizes, a SPEC
 *       that does not parse
 *   3   a bad input file: missing or empty data file, unreadable or wrong-model checkpoint
 *   130 training interrupted by SIGINT (after the checkpoint was saved)
 * Every error is ONE line on stderr: "oryx <command>: <what is wrong>".
 */
#ifndef OX_CLI_H
#define OX_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "models/oryx/model.h"

enum { CLI_OK = 0, CLI_ERR_RUN = 1, CLI_ERR_USAGE = 2, CLI_ERR_INPUT = 3, CLI_ERR_INTERRUPTED = 130 };

/* Prints "oryx <cmd>: <message>\n" to stderr (one line: newlines in the message become spaces) and returns
 * code, so a command can `return cli_fail(CLI_ERR_USAGE, "train", "...")`. */
int cli_fail(int code, const char *cmd, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Strict number parsing for flag values: the whole string must be a number in [lo, hi]. 0 on success,
 * else -1 after printing the error (flag named) through cli_fail with CLI_ERR_USAGE. */
int cli_parse_i64(const char *cmd, const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out);
int cli_parse_f64(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out);

/* Handles getopt_long's '?' and ':' results: prints "unknown option ..." or "option ... needs a value"
 * for argv's current element and returns CLI_ERR_USAGE. Call with opterr = 0 set. */
int cli_bad_option(const char *cmd, int c, char **argv);

/* mkdir -p of the folder part of path (nothing when there is none). 0, or -1 if a folder cannot be made. */
int cli_make_parent_dirs(const char *path);

/* A whole regular file read into a buffer (ox_io_read_file: the caller frees *data with ox_free). 0 on
 * success; on a missing, unreadable or empty file, or one that is a FIFO, directory or device, prints one
 * line and returns CLI_ERR_INPUT. */
int cli_read_file(const char *cmd, const char *what, const char *path, uint8_t **data, int64_t *len);

/* The files of a checkpoint named `ckpt` ("runs/oryx" or "runs/oryx.safetensors"), as ox_oryx_train_save
 * (models/oryx/train.h) writes them:
 *   prefix <stem>                    (what ox_oryx_train_save / ox_oryx_train_resume take)
 *   model  <stem>.safetensors        (the model: MODELS 12.2 names and 12.3 metadata)
 *   state  <stem>.state.safetensors  (training state: AdamW moments, step, RNG, hyper-parameters)
 *   csv    <stem>.loss.csv           (the loss history)
 * Each buffer has room for n bytes; model, state and csv may be NULL. Returns -1 if the name is empty or
 * does not fit. */
int cli_ckpt_paths(const char *ckpt, char *prefix, char *model, char *state, char *csv, size_t n);

/* Loads a checkpoint's model (strict) with a one-line error (CLI_ERR_INPUT) naming the file on failure.
 * Returns 0 or CLI_ERR_INPUT. */
int cli_load_model(ox_ctx *ctx, const char *cmd, const char *ckpt, ox_oryx_model *m, int64_t *step,
                   int64_t *train_seq_len);

/* ---- mode SPECs ---------------------------------------------------------------------------------------
 * attn | lin | mixed:<f> (each 64-token chunk ATTN with probability f, drawn from the seed) |
 * every:<N> (positions p with p % N == N-1 are ATTN) | prompt-attn (generate only: prompt ATTN, generated
 * LIN) | the path of a file of 'a'/'l' characters, whitespace ignored, one per position (past its end LIN). */
typedef enum cli_spec_kind {
    CLI_SPEC_ATTN,
    CLI_SPEC_LIN,
    CLI_SPEC_MIXED,
    CLI_SPEC_EVERY,
    CLI_SPEC_PROMPT_ATTN,
    CLI_SPEC_FILE
} cli_spec_kind;

#define CLI_SPEC_CHUNK 64

typedef struct cli_spec {
    cli_spec_kind kind;
    double fraction;        /* MIXED: probability that a chunk is ATTN, in [0, 1] */
    int64_t every;          /* EVERY: N >= 1 */
    uint8_t *map;           /* FILE: heap, one entry per position (1 = ATTN, 0 = LIN) */
    int64_t map_len;
    char text[64];          /* the SPEC as given (file specs: "file:<name>" shortened), for messages */
} cli_spec;

/* Parses s into *spec. allow_prompt: whether prompt-attn is accepted (generate only). Returns 0, or prints
 * one line naming the SPEC and what is accepted and returns CLI_ERR_USAGE. Free with cli_spec_free. */
int cli_spec_parse(const char *cmd, const char *s, int allow_prompt, cli_spec *spec);
void cli_spec_free(cli_spec *spec);

/* Fills map[0..n-1] with the modes of positions pos0 .. pos0+n-1 of sequence `seq` (1 = ATTN, 0 = LIN).
 * MIXED draws chunk c (chunk = position / 64) of sequence seq from the stream ox_oryx_modes_stream(seed,
 * seq, c): the same seed gives the same map. PROMPT_ATTN: positions < n_prompt are ATTN. */
void cli_spec_fill(const cli_spec *spec, uint64_t seed, int64_t seq, int64_t pos0, int64_t n, int64_t n_prompt,
                   int32_t *map);

/* Scores text as eval does: consecutive non-overlapping windows of T bytes of data[0..len-1] (the last one
 * may be shorter), each predicting its bytes 2..n from the previous ones under the modes of `spec` (window w
 * is sequence w of the spec), `batch` full windows per forward pass, at most max_windows windows (<= 0: all).
 * Adds the summed loss in nats to *nats and the number of predicted bytes to *count. Gradients are off
 * during the call and the context is reset (ox_ctx_reset) after every batch, so the caller must hold no
 * arena tensors across it. Unlike ox_oryx_evaluate_bytes (train.h), whose maps come from an
 * ox_oryx_map_spec (the same map for every window), the maps here follow the SPEC window by window
 * (mixed:<f> draws each window's chunks from its own stream). Returns OX_OK or the library's error (in ctx). */
ox_status cli_score(ox_ctx *ctx, const ox_oryx_model *m, const uint8_t *data, int64_t len, int64_t T,
                    const cli_spec *spec, uint64_t seed, int64_t batch, int64_t max_windows, double *nats,
                    int64_t *count);

/* The subcommands: argc/argv start at the subcommand's name. Each returns an exit code. */
int cli_train(int argc, char **argv);
int cli_generate(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_plot(int argc, char **argv);
int cli_attention(int argc, char **argv);
int cli_mqar(int argc, char **argv);

/* Draws the loss history csv (as train writes it) to the PNG png with the given title: training loss per
 * step and validation loss where measured (cli/plot.c). 0, or an exit code after one line on stderr. */
int cli_loss_png(const char *cmd, const char *csv, const char *png, const char *title);

/* Draws the mode map of positions 0..n-1 (map[t]: 1 = ATTN, 0 = LIN) for every layer of cfg to the PNG png:
 * rows = layers, columns = positions; layers of one kind show the kind they always run; a dashed line marks
 * the end of a prompt of n_prompt tokens (0 = none). 0, or an exit code after one line on stderr. */
int cli_mode_map_png(const char *cmd, const ox_oryx_config *cfg, const int32_t *map, int64_t n, int64_t n_prompt,
                     const char *spec_text, const char *png);

/* Human-readable durations for progress lines ("1m05s", "42s"). */
void cli_format_duration(double seconds, char *buf, size_t n);
double cli_now(void);   /* monotonic seconds */

#endif
