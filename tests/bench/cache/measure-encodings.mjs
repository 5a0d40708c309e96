#!/usr/bin/env node
// measure-encodings — what gzip, brotli and zstd buy on OTT-like assets, and what they cost.
// Usage: node measure-encodings.mjs FILE...   (zstd figures need the `zstd` CLI on PATH)
// Prints, per file and codec/level: compressed size, ratio, and compression time per call
// (median of N runs, in-process for gzip/brotli via node:zlib; zstd via `zstd -b`).
import zlib from 'node:zlib';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

function median(f, runs) {
    const t = [];
    let out;
    for (let i = 0; i < runs; i++) {
        const s = process.hrtime.bigint();
        out = f();
        t.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    t.sort((a, b) => a - b);
    return { out, ms: t[t.length >> 1] };
}

const rows = [];
for (const file of process.argv.slice(2)) {
    const buf = readFileSync(file);
    const name = path.basename(file);
    const add = (codec, size, ms) =>
        rows.push([name, buf.length, codec, size, ((100 * size) / buf.length).toFixed(1) + '%', ms.toFixed(2)]);
    for (const lvl of [1, 6, 9]) {
        const r = median(() => zlib.gzipSync(buf, { level: lvl }), 7);
        add(`gzip-${lvl}`, r.out.length, r.ms);
    }
    for (const q of [1, 4, 5, 6, 9, 11]) {
        const r = median(
            () =>
                zlib.brotliCompressSync(buf, {
                    params: {
                        [zlib.constants.BROTLI_PARAM_QUALITY]: q,
                        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: buf.length,
                        [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
                    },
                }),
            q >= 10 ? 3 : 7,
        );
        add(`br-${q}`, r.out.length, r.ms);
    }
    for (const lvl of [3, 9, 19]) {
        try {
            const size = execFileSync('zstd', [`-${lvl}`, '-c', '-q', file]).length;
            // zstd -b prints "... -> SIZE (ratio), COMP MB/s, DEC MB/s"
            const b = execFileSync('zstd', [`-b${lvl}`, '-i1', file], { stdio: ['ignore', 'pipe', 'pipe'] });
            const m = /,\s*([\d.]+)\s*MB\/s/.exec(b.toString());
            const ms = m ? (buf.length / 1e6 / Number(m[1])) * 1e3 : NaN;
            add(`zstd-${lvl}`, size, ms);
        } catch {
            /* no zstd CLI */
        }
    }
}
const head = ['file', 'bytes', 'codec', 'encoded', 'ratio', 'ms/compress'];
const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
const line = (r) => r.map((c, i) => String(c).padStart(w[i])).join('  ');
console.log(line(head));
for (const r of rows) console.log(line(r));
