/* embed_cli — `memfuse embed`: embeds texts from the command line or standard input and prints one JSON
 * object per text and line: {"text": "…", "tokens": [ids], "vector": [floats]}.
 *
 * argv[0] is "embed"; the rest are embedder flags (see embed_config_from_args), "--batch N" (texts per
 * embed_batch call when reading standard input, default 32), "--help", and texts. With no texts, every line
 * of standard input is one text (a trailing "\n" or "\r\n" is not part of it). Returns the process exit
 * code: 0 success, 1 runtime failure (embedder could not open, embedding or writing failed), 2 usage. */
#ifndef MEMFUSE_EMBED_CLI_H
#define MEMFUSE_EMBED_CLI_H

int embed_cli_main(int argc, char **argv);

#endif
