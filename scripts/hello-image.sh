#!/bin/sh
# Builds a tiny OCI image layout to push on a first try, with no registry to pull from: one layer
# holding /hello.txt, an image config, a manifest, tagged in index.json.
#   sh scripts/hello-image.sh [DIR [TAG]]      # default ./image and latest: oci:./image:latest
# Needs only sh, tar, gzip and sha256sum. The same input always gives the same digests.
set -eu
dir=${1:-./image}
tag=${2:-latest}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dir/blobs/sha256"

# put FILE: stores FILE under its digest and prints the digest's hex.
put() {
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  cp "$1" "$dir/blobs/sha256/$hex"
  echo "$hex"
}
size() { wc -c < "$1" | tr -d ' '; }

printf 'hello from quayfleet\n' > "$work/hello.txt"
tar -C "$work" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$work/layer.tar" hello.txt
gzip -n -c "$work/layer.tar" > "$work/layer.tar.gz"
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
layer=$(put "$work/layer.tar.gz")

printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/cat","/hello.txt"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$diff_id" > "$work/config.json"
config=$(put "$work/config.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$config" "$(size "$work/config.json")" "$layer" "$(size "$work/layer.tar.gz")" > "$work/manifest.json"
manifest=$(put "$work/manifest.json")

printf '{"imageLayoutVersion":"1.0.0"}' > "$dir/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$(size "$work/manifest.json")" "$tag" > "$dir/index.json"
echo "oci:$dir:$tag  sha256:$manifest"
