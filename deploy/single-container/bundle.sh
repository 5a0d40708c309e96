#!/usr/bin/env bash
# Bundles ott-edge with the exact glibc and libraries it was linked against, so that it
# runs on any x86-64/arm64 Linux image -- including OTT's Alpine (musl) image, which has
# none of Debian's libraries:
#   bundle.sh BINARY PREFIX        e.g. bundle.sh build/ott-edge /opt/ott-edge
# Result: PREFIX/bin/ott-edge (its ELF interpreter and DT_RPATH rewritten to PREFIX/lib),
# PREFIX/lib/ (ld-linux, libc and every shared library from `ldd`, plus the libraries ott-edge
# dlopen()s when a feature needs them -- libcurl for ACME, brotli, libldns for DNS-01, libcrypt
# for basic_auth, hiredis for cluster mode: ldd does not list them -- and their libraries) and
# PREFIX/etc/ca-certificates.crt (Debian's CA bundle: libcurl looks for
# /etc/ssl/certs/ca-certificates.crt, which images without ca-certificates lack -- link it
# there). The binary then never looks at the host's /lib or /usr/lib.
# Needs patchelf and ca-certificates (Debian packages).
set -euo pipefail
bin=${1:?usage: bundle.sh BINARY PREFIX}
prefix=${2:?usage: bundle.sh BINARY PREFIX}
dest=${DESTDIR:-}$prefix
command -v patchelf >/dev/null || { echo "bundle.sh: patchelf is needed (apt-get install patchelf)" >&2; exit 1; }

cabundle=/etc/ssl/certs/ca-certificates.crt
[ -s "$cabundle" ] || { echo "bundle.sh: $cabundle is missing (apt-get install ca-certificates)" >&2; exit 1; }
# The dlopen()ed libraries (pkg/util/dynlib users: soname and Debian package), as the dynamic
# linker would find them for dlopen("soname").
dlopened=(libcurl.so.4:libcurl4 libbrotlienc.so.1:libbrotli1 libldns.so.3:libldns3 libcrypt.so.1:libcrypt1
          libhiredis.so.0.14:libhiredis0.14)
extra=()
for d in "${dlopened[@]}"; do
    so=${d%%:*}
    f=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64|AArch64/ {print $NF; exit}')
    [ -n "$f" ] || { echo "bundle.sh: $so not found (apt-get install ${d##*:})" >&2; exit 1; }
    extra+=("$f")
done

install -d "$dest/bin" "$dest/lib" "$dest/etc"
install -m 0755 "$bin" "$dest/bin/ott-edge"
install -m 0644 "$cabundle" "$dest/etc/ca-certificates.crt"
interp=$(patchelf --print-interpreter "$bin")
# Every library the dynamic linker resolves for the binary and for the dlopen()ed ones (the whole closure).
{ ldd "$bin"; for f in "${extra[@]}"; do echo "$(basename "$f") => $f"; ldd "$f"; done; } |
    awk '/=> \// {print $3} /^\s*\/.*ld-linux/ {print $1}' | sort -u | while read -r lib; do
    cp -L "$lib" "$dest/lib/"
done
cp -L "$interp" "$dest/lib/"
# glibc dlopen()s libgcc_s for thread cancellation and unwinding; ldd does not list it.
gcc_s=$(ldconfig -p | awk '/libgcc_s\.so\.1 .*x86-64|libgcc_s\.so\.1 .*AArch64/ {print $NF; exit}')
if [ -n "$gcc_s" ]; then cp -L "$gcc_s" "$dest/lib/"; fi
# DT_RPATH (not RUNPATH) so that the libraries' own dependencies resolve here too.
patchelf --set-interpreter "$prefix/lib/$(basename "$interp")" --force-rpath --set-rpath "$prefix/lib" "$dest/bin/ott-edge"
strip --strip-unneeded "$dest/bin/ott-edge" "$dest"/lib/*.so* 2>/dev/null || true
echo "bundle.sh: $(ls "$dest/lib" | wc -l) libraries, $(du -sh "$dest" | cut -f1) in $dest" >&2
