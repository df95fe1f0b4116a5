/* main.c - bin/oryx: the program a person runs. Dispatches to the subcommands train, generate, eval,
 * info, plot, attention and mqar (one file each in cli/); `oryx --help` lists them, `oryx <command> --help`
 * lists every flag with its default. Errors are one line on stderr and a non-zero exit code (cli.h).
 *
 * For tests only: ORYX_TEST_EXIT_AFTER_IO=N makes the process end at once (_exit(99), as kill -9 would:
 * no cleanup, no buffers flushed) right after the N-th write, fsync or rename of an atomic file replacement
 * (tensor/io.h), so a test can interrupt a checkpoint save at each instant in turn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tensor/io.h"
#include "tensor/ctx.h"

static long g_io_events_left;

static void exit_after_io(ox_io_event ev, const char *path, void *user)
{
    (void)ev;
    (void)path;
    (void)user;
    if (--g_io_events_left == 0)
        _exit(99);
}

static const char usage[] =
    "usage: oryx <command> [options]     (oryx <command> --help lists every option and its default)\n"
    "\n"
    "commands:\n"
    "  train     train an Oryx-family byte-level language model on a text file\n"
    "            oryx train --data FILE --preset NAME --steps N --out CKPT [--resume CKPT] [--seed S]\n"
    "  generate  stream text from a checkpoint\n"
    "            oryx generate --ckpt CKPT --prompt TEXT --tokens N --modes SPEC\n"
    "  eval      validation loss and bits per byte of a checkpoint on a text file\n"
    "            oryx eval --ckpt CKPT --data FILE --modes SPEC\n"
    "  info      a checkpoint's configuration, parameter report and size\n"
    "            oryx info --ckpt CKPT\n"
    "  plot      draw loss histories (one or several runs) as a PNG line chart\n"
    "            oryx plot --out FILE.png RUN.loss.csv [RUN2.loss.csv ...]\n"
    "  attention draw one attention head's probabilities for a prompt as a PNG heatmap\n"
    "            oryx attention --ckpt CKPT --prompt TEXT --layer L --head H --out FILE.png\n"
    "  mqar      train presets on multi-query associative recall, accuracy per mode map and attention fraction\n"
    "            oryx mqar --presets oryx-gdn,hybrid-gdn --minutes 10 --out runs/mqar\n"
    "\n"
    "SPEC (mode schedule): attn | lin | mixed | chunks:<f> | every:<N> | prompt-attn (generate) | a file of 'a'/'l'\n";

int main(int argc, char **argv)
{
    ox_omp_bound_spin(argv);   /* idle OpenMP threads must not hold a core another process needs (tensor/ctx.h) */
    const char *test_exit = getenv("ORYX_TEST_EXIT_AFTER_IO");
    if (test_exit && (g_io_events_left = strtol(test_exit, NULL, 10)) > 0)
        ox_io_set_hook(exit_after_io, NULL);
    if (argc < 2)
        return cli_fail(CLI_ERR_USAGE, "", "no command given (try: oryx --help)");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "train") == 0)
        return cli_train(argc - 1, argv + 1);
    if (strcmp(cmd, "generate") == 0)
        return cli_generate(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0)
        return cli_eval(argc - 1, argv + 1);
    if (strcmp(cmd, "info") == 0)
        return cli_info(argc - 1, argv + 1);
    if (strcmp(cmd, "plot") == 0)
        return cli_plot(argc - 1, argv + 1);
    if (strcmp(cmd, "attention") == 0)
        return cli_attention(argc - 1, argv + 1);
    if (strcmp(cmd, "mqar") == 0)
        return cli_mqar(argc - 1, argv + 1);
    return cli_fail(CLI_ERR_USAGE, "", "unknown command '%s' (commands: train, generate, eval, info, plot, attention, mqar; see oryx --help)",
                    cmd);
}
