// The golden corpus: texts that exercise the tokenizer and the model — short and long (over 128 tokens),
// punctuation, numbers, mixed case, accents (composed and decomposed), compatibility characters that NFKC
// rewrites, CJK and other scripts, emoji, runs of characters the vocabulary does not have, white space
// only and empty, and the vocabulary's own oddities (pieces with null or positive scores, duplicates,
// reserved symbols). Deterministic: generated parts use a fixed-seed PRNG.
'use strict';

const handWritten = [
  // everyday sentences
  'hello world',
  'Hello World',
  'HELLO WORLD',
  'hElLo WoRlD',
  'The quick brown fox jumps over the lazy dog.',
  'I prefer tea over coffee in the morning.',
  'My sister lives in Berlin and works as a nurse.',
  'What time is the meeting tomorrow?',
  'Remind me to call the dentist on Friday at 3pm.',
  'We decided to use PostgreSQL for the production database.',
  'She said: "I\'ll be there by noon," but arrived at 2.',
  "Don't forget: it's John's birthday on the 14th!",
  'The user is allergic to peanuts and shellfish.',
  'Our Q3 revenue grew 12.5% year-over-year, to $4.2M.',
  'Can you summarise the last three conversations?',
  'a',
  'I',
  'A.',
  '?',
  'ok',
  'OK',
  'Ok.',
  'yes',
  'No!',
  'thanks',
  'Thank you very much for your help yesterday.',
  // punctuation and symbols
  '...',
  '!!!???',
  '— – - ‒ ―',
  '“Smart quotes” and ‘single ones’',
  '(parentheses) [brackets] {braces} <angles>',
  '#hashtag @mention $money %percent ^caret &amp *star',
  'a/b\\c|d~e`f',
  '::: ;;; ,,, ...',
  'Wait... what?! Really?!?',
  '«Bonjour», dit-il.',
  '¿Dónde está la biblioteca?',
  '¡Hola!',
  // numbers
  '3.14159265358979',
  '2024-01-31T12:34:56Z',
  '$1,234,567.89',
  '1e-9 and 6.022e23',
  '+44 20 7946 0958',
  '0',
  '42',
  '007',
  '1/2 3/4 5/8',
  'Call 555-0199 or 555-0123 before 10:30.',
  'Version 2.3.4-beta.1 was released on 12/05/2023.',
  'The temperature dropped to -17.5°C overnight.',
  'It costs €20, £15, ¥2000 or ₹1500.',
  // accents, composed and decomposed
  'café',
  'cafe\u0301',
  'naïve résumé',
  'nai\u0308ve re\u0301sume\u0301',
  'Ångström',
  'A\u030angstro\u0308m',
  'Crème brûlée à la française',
  'Zürich, Göteborg, Kraków, Łódź',
  'São Paulo and Bogotá',
  'Ærøskøbing Øresund',
  'İstanbul ıi',
  'Straße groß',
  // compatibility characters (NFKC rewrites them)
  'ﬁnancial ﬂow',
  '①②③ ⑳',
  'Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ １２３',
  'ｶﾀｶﾅ',
  '™ ℠ © ®',
  '½ ¼ ¾ ⅓',
  'x² + y³ = z⁴',
  'H₂O and CO₂',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 𝐛𝐨𝐥𝐝',
  'Ⅻ o\'clock',
  '㎞ ㎏ ㍱',
  'non\u00a0breaking\u00a0space',
  'ideographic\u3000space',
  'em\u2003space and thin\u2009space',
  // CJK and other scripts
  '東京は日本の首都です。',
  '你好，世界！',
  '我喜欢喝茶，不喜欢喝咖啡。',
  '한국어 문장입니다.',
  'こんにちは、お元気ですか？',
  'Привет, как дела?',
  'Москва — столица России.',
  'Γειά σου Κόσμε',
  'مرحبا بالعالم',
  'שלום עולם',
  'नमस्ते दुनिया',
  'สวัสดีชาวโลก',
  'Xin chào thế giới',
  'Mixed 中文 and English 文本',
  // emoji
  '👍',
  '👍🏽',
  '👨‍👩‍👧‍👦',
  '🇫🇷 🇯🇵 🇺🇸',
  'I love pizza 🍕🍕🍕!',
  '😀😀x',
  '🙂 :) :-) :( ;)',
  '❤️ ♥ ★ ☆',
  // runs of unknown characters
  '☃☃☃☃☃',
  '☃ ☃ ☃',
  'ß',
  'ßßßßßßßß',
  '𓀀𓀁𓀂𓀃',
  '\u{1F600}\u{1F601}\u{1F602}\u{1F603}\u{1F604}\u{1F605}\u{1F606}',
  'abc☃def☃ghi',
  '\u0000',
  'nul\u0000byte',
  '\u0007bell\u001bescape',
  'zero\u200bwidth\u200cjoiner\u200d',
  '\u200e\u200fdirection marks',
  'e\u0301\u0301\u0301 stacked accents',
  '\ufffd replacement',
  '\ufeffBOM at start',
  // white space only, and empty
  '',
  ' ',
  '  ',
  '     ',
  '\t',
  '\n',
  '\r\n',
  ' \t\n ',
  '\u00a0',
  '\u3000',
  '\u2003\u2009',
  // leading, trailing, repeated spaces and other white space inside
  '  leading spaces',
  'trailing spaces   ',
  'many     spaces     between',
  'tab\tseparated\tvalues',
  'line one\nline two\nline three',
  'windows\r\nline endings',
  // vocabulary oddities: null-score pieces, positive score, duplicates, reserved symbols
  ':',
  'http://example.com/path?q=1',
  'time is 10:30 or 12:00 or 9:30',
  'smile :) frown :( wink :-)',
  '”5 ”5”5',
  '<s> </s> <unk>',
  'extra_token_id_1 extra_token_id_2',
  '▁ ▁▁ leading lower-eighth block',
  // code, markup, identifiers
  'int main(void) { return 0; }',
  'SELECT * FROM users WHERE id = 42;',
  '{"key": "value", "list": [1, 2, 3]}',
  '<div class="note">Hello</div>',
  'user@example.com',
  'snake_case camelCase PascalCase kebab-case SCREAMING_CASE',
  'https://www.example.org/a/b/c.html#section-2',
  '~/projects/memfuse/src/embed/spm.c:42:7',
  'git commit -m "fix: handle empty input"',
  // long texts
  'The meeting covered the roadmap for next quarter, including the migration of the storage layer, the new ' +
    'retrieval pipeline, and a plan to reduce latency for memory queries. Everyone agreed to review the ' +
    'design document before Thursday and to collect benchmarks on the staging cluster.',
  'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et ' +
    'dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ' +
    'ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu ' +
    'fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia ' +
    'deserunt mollit anim id est laborum.',
  'word '.repeat(200).trim(),
  'a'.repeat(300),
  'ab '.repeat(150),
  '1234567890'.repeat(30),
  '!?'.repeat(100),
  '東京'.repeat(80),
  '☃'.repeat(200),
  '👍🏽 '.repeat(60),
];

// Deterministic generator (mulberry32).
function prng(seed) {
  return function () {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const words = (
  'the of and to in is you that it he was for on are as with his they at be this have from or one had by ' +
  'word but not what all were we when your can said there use an each which she do how their if will up ' +
  'other about out many then them these so some her would make like him into time has look two more write ' +
  'go see number no way could people my than first water been call who oil its now find long down day did ' +
  'get come made may part memory vector search embedding database latency server user agent session message ' +
  'knowledge query coffee tea morning evening Berlin Paris Tokyo London friday monday doctor nurse engineer ' +
  'café naïve résumé Zürich 東京 你好 мир 🙂 42 3.14 2024 $100 e-mail re-use'
).split(' ');
const puncts = ['', '', '', ',', '.', '!', '?', ';', ':', ' -', '...'];

function sentence(rnd, nwords) {
  const out = [];
  for (let i = 0; i < nwords; i++) {
    let w = words[Math.floor(rnd() * words.length)];
    const r = rnd();
    if (r < 0.08) w = w.toUpperCase();
    else if (r < 0.2 || i === 0) w = w.charAt(0).toUpperCase() + w.slice(1);
    out.push(w + puncts[Math.floor(rnd() * puncts.length)]);
  }
  return out.join(' ');
}

function generated() {
  const rnd = prng(20240531);
  const out = [];
  const lengths = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 130, 160, 200, 260];
  for (let k = 0; k < 110; k++) out.push(sentence(rnd, lengths[k % lengths.length]));
  return out;
}

function goldenTexts() {
  const all = handWritten.concat(generated());
  const seen = new Set();
  return all.filter((t) => (seen.has(t) ? false : (seen.add(t), true)));
}

module.exports = { goldenTexts, prng, sentence };
