// lazy-libs — the libraries only optional features need are not linked but loaded (dlopen)
// when the feature is configured or first used (issue 17, idle RSS): read from
// /proc/PID/maps of a running ott-edge. With the default configuration none of libldns,
// libcrypt, libhiredis, libbrotlienc (nor libm, which only brotli pulls in) is mapped; a
// gzip response does not load brotli, the first br response does (and decodes); basic_auth
// maps libcrypt at start (and logins work through it); DNS-01 maps libldns at start;
// cluster.redis maps hiredis at start. Each configured edge maps its library and no other.
// And when a library is missing (hidden by a bind mount of /dev/null in a user+mount
// namespace of ott-edge's own): a configured feature stops start-up and check-config with
// exit 2 and one line naming the key and the package to install; a missing brotli is one
// warning, then gzip (or identity) — no request fails.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, realpathSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import zlib from 'node:zlib';
import { startEdge, runEdge, runProcess, tmpDir, toYaml, freePort, slow, EDGE_BIN } from '../lib/harness.mjs';
import { startAssets, get1, getUpstream } from '../bench/cache/assets.mjs';

const T = 30000 * slow;
const LIBS = {
    ldns: 'libldns.so.3',
    crypt: 'libcrypt.so.1',
    hiredis: 'libhiredis.so.0.14',
    brotli: 'libbrotlienc.so.1',
};
const ACME = { directory: 'https://127.0.0.1:1/dir' }; // never reached: only the configuration matters here

/** The libraries (file names) mapped by a process. */
function mappedLibs(pid) {
    const names = new Set();
    for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
        const file = line.split(/\s+/)[5];
        if (file && file.startsWith('/')) names.add(path.basename(file));
    }
    return names;
}
/** Whether the library soname (its file: soname or soname.x.y) is mapped. */
const isMapped = (names, soname) => [...names].some((n) => n === soname || n.startsWith(`${soname}.`));

/** Asserts which of LIBS are mapped in pid: exactly those in `want`. */
function expectMapped(pid, want, what) {
    const names = mappedLibs(pid);
    for (const [key, soname] of Object.entries(LIBS)) {
        assert.equal(isMapped(names, soname), want.includes(key), `${what}: ${soname} should${want.includes(key) ? '' : ' not'} be mapped`);
    }
    return names;
}

// libm and libbrotlicommon come with brotli (libbrotlicommon also with libcurl, when ACME
// runs); a sanitizer runtime may map libm for itself
const libmIsOurs = !isMapped(new Set(execFileSync('ldd', [EDGE_BIN]).toString().split('\n').map((l) => path.basename(l.trim().split(/\s+/)[0] || ''))), 'libasan.so');

// ---- hiding a library from one ott-edge
const canHide = spawnSync('unshare', ['-rm', 'sh', '-c', 'mount --bind /dev/null /dev/zero'], { timeout: 10000 }).status === 0;
/** An executable that runs ott-edge (same PID, same arguments) with soname's file replaced by
 *  /dev/null in a mount namespace of its own (the dynamic linker then cannot load it). */
function edgeWithout(soname) {
    const line = execFileSync('/sbin/ldconfig', ['-p']).toString().split('\n').find((l) => l.trim().split(' ')[0] === soname);
    assert.ok(line, `${soname} is not installed`);
    const file = realpathSync(line.split(' => ')[1].trim());
    const w = path.join(tmpDir(), 'ott-edge-without');
    writeFileSync(w, `#!/bin/sh\nexec unshare -rm sh -c 'mount --bind /dev/null "$1" && shift && exec "$@"' sh '${file}' '${EDGE_BIN}' "$@"\n`, { mode: 0o755 });
    return w;
}
/** The environment of a one-shot ott-edge: ours without OTT_EDGE_* (they would be read as config keys). */
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTT_EDGE_')));
/** check-config of config (an object) by an ott-edge without soname: {code, stdout, stderr}. */
async function checkWithout(soname, config) {
    const f = path.join(tmpDir(), 'config.yaml');
    writeFileSync(f, toYaml({ state_dir: path.join(path.dirname(f), 'state'), ...config }));
    return runProcess(edgeWithout(soname), ['--config', f, 'check-config'], { env: cleanEnv(), timeoutMs: 15000 * slow });
}

describe('optional libraries are loaded only when used', () => {
    let up;
    before(async () => {
        up = await startAssets();
    });
    after(async () => up?.stop());

    it('default configuration: none mapped; gzip does not load brotli, the first br response does', { timeout: T }, async () => {
        const edge = await startEdge({ config: { upstream: up.url, cache: { enabled: false } } });
        try {
            const names = expectMapped(edge.pid, [], 'idle');
            assert.ok(!isMapped(names, 'libbrotlicommon.so.1'), 'libbrotlicommon.so.1 is mapped at idle');
            if (libmIsOurs) assert.ok(!isMapped(names, 'libm.so.6'), 'libm.so.6 is mapped at idle');
            const orig = await getUpstream(up.url, '/assets/app.js');

            const g = await get1(edge.httpsPort, '/assets/app.js', { headers: { 'accept-encoding': 'gzip' } });
            assert.equal(g.headers['content-encoding'], 'gzip');
            assert.ok(zlib.gunzipSync(g.body).equals(orig.body));
            expectMapped(edge.pid, [], 'after a gzip response');

            const b = await get1(edge.httpsPort, '/assets/app.js', { headers: { 'accept-encoding': 'gzip, br' } });
            assert.equal(b.headers['content-encoding'], 'br');
            assert.ok(zlib.brotliDecompressSync(b.body).equals(orig.body), 'br body decodes to the original');
            assert.ok(isMapped(expectMapped(edge.pid, ['brotli'], 'after a br response'), 'libbrotlicommon.so.1'));
            assert.ok(!/compress_brotli_unavailable/.test(edge.stderr()), edge.stderr());
        } finally {
            await edge.stop();
        }
    });

    it('access.basic_auth: libcrypt is mapped at start, and checks passwords', { timeout: T }, async () => {
        const dir = tmpDir();
        const file = path.join(dir, 'htpasswd');
        const hash = execFileSync('openssl', ['passwd', '-6', '-salt', 'lazylibsalt', 'open sesame']).toString().trim();
        writeFileSync(file, `alice:${hash}\n`);
        const edge = await startEdge({ config: { upstream: up.url, access: { basic_auth: file } } });
        try {
            expectMapped(edge.pid, ['crypt'], 'basic_auth configured');
            const auth = (pw) => ({ authorization: `Basic ${Buffer.from(`alice:${pw}`).toString('base64')}` });
            assert.equal((await get1(edge.httpsPort, '/assets/app.js', { headers: auth('wrong') })).status, 401);
            assert.equal((await get1(edge.httpsPort, '/assets/app.js', { headers: auth('open sesame') })).status, 200);
        } finally {
            await edge.stop();
        }
    });

    it('DNS-01 configured: libldns is mapped at start (check-config loads it too)', { timeout: T }, async () => {
        const config = {
            domains: ['lazy.ott-edge.test'],
            acme: { ...ACME, challenges: ['dns-01'], dns: { provider: 'exec', exec: { command: '/bin/true' } } },
        };
        const edge = await startEdge({ config });
        try {
            expectMapped(edge.pid, ['ldns'], 'dns-01 configured');
            const r = await runEdge(['check-config', '--config', edge.configPath], { timeoutMs: 10000 });
            assert.equal(r.code, 0, r.stderr);
        } finally {
            await edge.stop();
        }
    });

    it('cluster.redis configured: hiredis is mapped at start (Redis itself not reachable yet)', { timeout: T }, async () => {
        const port = await freePort();
        const edge = await startEdge({
            config: { domains: ['lazy.ott-edge.test'], acme: ACME, cluster: { redis: `redis://127.0.0.1:${port}`, node_id: 'lazy' } },
        });
        try {
            await edge.waitForLog(/cluster_redis_down/, 5000 * slow); // hiredis ran: it tried to connect
            expectMapped(edge.pid, ['hiredis'], 'cluster.redis configured');
        } finally {
            await edge.stop();
        }
    });
});

describe('a missing optional library', () => {
    const skip = canHide ? false : 'needs unshare -rm (user and mount namespaces) to hide a library';
    let up;
    before(async () => {
        if (!skip) up = await startAssets();
    });
    after(async () => up?.stop());

    const DNS01 = { domains: ['lazy.ott-edge.test'], acme: { ...ACME, challenges: ['dns-01'], dns: { provider: 'exec', exec: { command: '/bin/true' } } } };
    for (const [what, soname, config, re] of [
        ['DNS-01 without libldns', LIBS.ldns, DNS01,
            /^config: acme\.challenges: dns-01 needs libldns: cannot load libldns\.so\.3 \(.+\): install libldns3$/],
        ['cluster.redis without hiredis', LIBS.hiredis, { domains: ['lazy.ott-edge.test'], acme: ACME, cluster: { redis: 'redis://127.0.0.1:6379' } },
            /^config: cluster\.redis: cluster mode needs hiredis: cannot load libhiredis\.so\.0\.14 \(.+\): install libhiredis0\.14$/],
        ['basic_auth without libcrypt', LIBS.crypt, 'basic_auth',
            /^config: access\.basic_auth: "[^"]+htpasswd": cannot load libcrypt\.so\.1 \(.+\): install libcrypt1$/],
    ]) {
        it(`${what}: check-config exits 2 with one line naming the key and the package`, { timeout: T, skip }, async () => {
            let cfg = config;
            if (config === 'basic_auth') {
                const file = path.join(tmpDir(), 'htpasswd');
                writeFileSync(file, `alice:${execFileSync('openssl', ['passwd', '-6', '-salt', 'lazylibsalt', 'x']).toString().trim()}\n`);
                cfg = { access: { basic_auth: file } };
            }
            const r = await checkWithout(soname, cfg);
            assert.equal(r.code, 2, `exit ${r.code}\n${r.stderr}`);
            assert.match(r.stderr.trim(), re);
            // the same configuration with the library present is fine
            const f = path.join(tmpDir(), 'config.yaml');
            writeFileSync(f, toYaml({ state_dir: path.join(path.dirname(f), 'state'), ...cfg }));
            const ok = await runEdge(['check-config', '--config', f], { timeoutMs: 10000 });
            assert.equal(ok.code, 0, ok.stderr);
        });
    }

    it('DNS-01 without libldns: ott-edge does not start (exit 2)', { timeout: T, skip }, async () => {
        const r = await startEdge({ config: DNS01, bin: edgeWithout(LIBS.ldns), expectExit: true, timeoutMs: 15000 });
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /dns-01 needs libldns: cannot load libldns\.so\.3 .*install libldns3/);
    });

    it('a reload that turns on DNS-01 without libldns is refused; the configuration in service stays', { timeout: T, skip }, async () => {
        const edge = await startEdge({ config: { upstream: up.url }, bin: edgeWithout(LIBS.ldns) });
        try {
            writeFileSync(edge.configPath, toYaml({ ...edge.config, ...DNS01 }));
            edge.kill('SIGHUP');
            const line = await edge.waitForLog(/reload_failed/, 10000 * slow);
            assert.match(line, /dns-01 needs libldns: cannot load libldns\.so\.3 .*install libldns3/);
            assert.equal((await get1(edge.httpsPort, '/assets/app.js')).status, 200, 'still serving');
            expectMapped(edge.pid, [], 'libldns hidden');
        } finally {
            await edge.stop();
        }
    });

    it('without libbrotlienc: one warning, then gzip (or identity), never a failed request', { timeout: T, skip }, async () => {
        const edge = await startEdge({ config: { upstream: up.url, cache: { enabled: false } }, bin: edgeWithout(LIBS.brotli) });
        try {
            const orig = await getUpstream(up.url, '/assets/app.js');
            const a = await get1(edge.httpsPort, '/assets/app.js', { headers: { 'accept-encoding': 'gzip, br' } });
            assert.equal(a.status, 200);
            assert.equal(a.headers['content-encoding'], 'gzip');
            assert.ok(zlib.gunzipSync(a.body).equals(orig.body));
            // br alone: no longer offered, so the body goes as it is
            const b = await get1(edge.httpsPort, '/assets/app.js', { headers: { 'accept-encoding': 'br' } });
            assert.equal(b.status, 200);
            assert.equal(b.headers['content-encoding'], undefined);
            assert.ok(b.body.equals(orig.body));
            const c = await get1(edge.httpsPort, '/assets/app.js', { headers: { 'accept-encoding': 'br, gzip' } });
            assert.equal(c.headers['content-encoding'], 'gzip');
            const warnings = edge.logs.filter((l) => /compress_brotli_unavailable/.test(l));
            assert.equal(warnings.length, 1, edge.stderr());
            assert.match(warnings[0], /cannot load libbrotlienc\.so\.1 .*install libbrotli1/);
            expectMapped(edge.pid, [], 'brotli hidden');
        } finally {
            await edge.stop();
        }
    });
});
