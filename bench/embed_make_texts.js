#!/usr/bin/env node
// Writes bench/embed_texts.txt: 512 English-like sentences of 50-62 characters (mean ~56), one per line,
// the text set of the embedding benchmarks (C and Node read the same file). Deterministic (fixed seed).
'use strict';
const fs = require('fs');
const path = require('path');
const { prng } = require('../scripts/golden/texts');
const words = ('I we you they she he the a my our to of in on for with at from about and but so this that ' +
  'meeting tomorrow coffee tea morning evening sister brother friend doctor office project deadline report ' +
  'database server memory search vector users session message weekend holiday trip flight hotel dinner ' +
  'prefer like love hate need want remember forget decided moved started finished booked called asked ' +
  'Berlin Paris Tokyo London Monday Friday June 3pm 10:30 42 new old big small early late quickly really').split(' ');
const rnd = prng(56);
const out = [];
while (out.length < 512) {
  const target = 50 + Math.floor(rnd() * 13);
  let s = '';
  while (s.length < target) s += (s ? ' ' : '') + words[Math.floor(rnd() * words.length)];
  s = s.slice(0, target).trim();
  s = s.charAt(0).toUpperCase() + s.slice(1) + (rnd() < 0.7 ? '.' : '?');
  out.push(s);
}
fs.writeFileSync(path.join(__dirname, 'embed_texts.txt'), out.join('\n') + '\n');
const mean = out.reduce((a, s) => a + [...s].length, 0) / out.length;
console.error(`wrote ${out.length} texts, mean ${mean.toFixed(1)} characters`);
