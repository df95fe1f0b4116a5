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
#include "models/oryx/modes.h"

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
 * The library's vocabulary (models/oryx/modes.h, ox_oryx_map_parse): attn | lin | mixed (MODELS 8) |
 * chunks:<f> (each 64-token chunk ATTN with probability f, drawn from the seed) | every:<N> (positions p with
 * p % N == N-1 are ATTN) | prompt-attn (generate only: prompt ATTN, generated LIN) | the path of a file of
 * 'a'/'l' characters, whitespace ignored, one per position (past its end LIN). */

/* ox_oryx_map_parse (files accepted) with one line naming the SPEC on error: 0 or CLI_ERR_USAGE (a file that
 * cannot be read: CLI_ERR_INPUT). spec->seed is left for the caller; *owned: ox_free. */
int cli_map_parse(const char *cmd, const char *text, unsigned accept, ox_oryx_map_spec *spec, int64_t **owned);

/* Fills map[0..n-1] with the modes of sequence `seq` (the map of call `seq`, row 0: ox_oryx_map_build), using
 * ctx's arena for scratch (rewound). 0, or an exit code after one line on stderr. */
int cli_map_row(ox_ctx *ctx, const char *cmd, const ox_oryx_map_spec *spec, uint64_t seq, int64_t n, int32_t *map);

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
