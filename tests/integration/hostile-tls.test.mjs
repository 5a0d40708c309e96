// hostile-tls — what arrives before HTTP: garbage instead of a ClientHello, truncated
// handshakes (many at once, cut at client.handshake_timeout), unknown SNI, clients that
// offer only TLS 1.0/1.1 (refused). ott-edge must keep serving through all of it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { slow, sleep, startUpstream, startEdge, curl, makeCert, peerCert, runProcess } from '../lib/harness.mjs';

const T = 60000 * slow;
const note = (s) => process.stderr.write(`# note: ${s}\n`);
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

/** A real ClientHello, captured from node's TLS client against a plain TCP listener. */
function captureClientHello(opts = {}) {
    return new Promise((resolve, reject) => {
        const srv = net.createServer((sock) => {
            sock.once('data', (d) => {
                resolve(d);
                sock.destroy();
                srv.close();
            });
        });
        srv.listen(0, '127.0.0.1', () => {
            const c = tls.connect({ host: '127.0.0.1', port: srv.address().port, servername: 'ott.test', ALPNProtocols: ['h2', 'http/1.1'], rejectUnauthorized: false, ...opts });
            c.on('error', () => {});
        });
        setTimeout(() => reject(new Error('no ClientHello captured')), 5000).unref();
    });
}

/** Opens TCP, writes bytes, waits for the server to close (or timeoutMs). Resolves {closedAfterMs|null, got}. */
function tcpSend(port, bytes, timeoutMs) {
    return new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port });
        const chunks = [];
        let t0;
        let done = false;
        const finish = (closed) => {
            if (done) return;
            done = true;
            clearTimeout(t);
            s.destroy();
            resolve({ closedAfterMs: closed ? Date.now() - t0 : null, got: Buffer.concat(chunks) });
        };
        const t = setTimeout(() => finish(false), timeoutMs);
        s.once('connect', () => {
            t0 = Date.now();
            if (bytes.length) s.write(bytes);
        });
        s.on('data', (d) => chunks.push(d));
        s.on('close', () => finish(true));
        s.on('error', () => finish(true));
    });
}

describe('hostile TLS clients', () => {
    let up, edge, cert;
    const assertServing = async () => {
        const r = await curl(['-k', '--http2', '-w', '\n%{http_code}', `${edge.url}/api/status`]);
        assert.equal(r.code, 0, `curl failed: ${r.stderr}`);
        assert.match(r.stdout, /200$/);
        assert.equal(edge.exitInfo, null, `ott-edge exited: ${edge.stderr()}`);
    };
    before(async () => {
        up = await startUpstream();
        cert = makeCert({ cn: 'ott.test', sans: ['ott.test'] });
        edge = await startEdge({ config: { upstream: up.url, tls: { cert_file: cert.certFile, key_file: cert.keyFile }, client: { handshake_timeout: '2s' } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('garbage instead of a ClientHello is dropped at once and the server keeps serving', { timeout: T }, async () => {
        const shapes = {
            'plain HTTP': Buffer.from('GET / HTTP/1.1\r\nHost: ott.test\r\n\r\n'),
            'random bytes': Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 0xff)),
            'SSLv2 hello': Buffer.from('80460103010030000000100000040000050000', 'hex'),
            'record with absurd length': Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, ...Array(64).fill(0x41)]),
            'alert before hello': Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]),
            'zero-length record': Buffer.from([0x16, 0x03, 0x03, 0x00, 0x00]),
            'h2 preface in clear': Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
        };
        for (const [k, b] of Object.entries(shapes)) {
            const r = await tcpSend(edge.httpsPort, b, 5000 * slow);
            note(`${k}: closed after ${r.closedAfterMs} ms, server sent ${r.got.length} bytes`);
            assert.ok(r.closedAfterMs !== null, `${k}: connection not closed within 5 s`);
            assert.ok(!/HTTP\/1/.test(r.got.toString('latin1')), `${k}: got an HTTP answer in clear`);
        }
        await assertServing();
    });

    it('truncated handshakes (100 at once) are cut at client.handshake_timeout; memory bounded', { timeout: T }, async () => {
        const hello = await captureClientHello();
        const rss0 = rssKiB(edge.pid);
        const cuts = [hello.subarray(0, 3), hello.subarray(0, 5), hello.subarray(0, 60), hello.subarray(0, hello.length - 1), Buffer.alloc(0)];
        const runs = [];
        for (let i = 0; i < 100; i++) runs.push(tcpSend(edge.httpsPort, cuts[i % cuts.length], 8000 * slow));
        await sleep(500);
        const rssMid = rssKiB(edge.pid);
        await assertServing(); // served while 100 handshakes hang
        const res = await Promise.all(runs);
        const ms = res.map((r) => r.closedAfterMs).filter((x) => x !== null).sort((a, b) => a - b);
        note(`truncated handshakes: ${ms.length}/100 cut, after ${ms[0]}..${ms[ms.length - 1]} ms; RSS ${rss0} -> ${rssMid} kB`);
        assert.equal(ms.length, 100, `${100 - ms.length} hanging handshakes never cut`);
        assert.ok(ms[ms.length - 1] < 5000 * slow, `a hanging handshake lived ${ms[ms.length - 1]} ms (handshake_timeout 2s)`);
        assert.ok((rssMid - rss0) / 1024 < 32 * slow);
        await assertServing();
    });

    it('an unknown SNI gets the configured certificate (or a refusal), never a crash', { timeout: T }, async () => {
        for (const sni of ['unknown.example', 'a'.repeat(250), 'xn--nxasmq6b.example', '127.0.0.1.nip.io']) {
            try {
                const c = await peerCert(edge.httpsPort, { servername: sni });
                note(`SNI ${sni.slice(0, 30)}: served ${c.subject?.CN} over ${c.protocol}`);
                assert.equal(c.fingerprint256, cert.fingerprint256);
            } catch (e) {
                note(`SNI ${sni.slice(0, 30)}: refused (${e.code || e.message})`);
            }
        }
        // no SNI at all
        const c = await peerCert(edge.httpsPort, {});
        assert.equal(c.fingerprint256, cert.fingerprint256);
        await assertServing();
    });

    for (const v of ['TLSv1', 'TLSv1.1']) {
        it(`a client offering only ${v} is refused (node tls)`, { timeout: T }, async () => {
            const err = await peerCert(edge.httpsPort, { servername: 'ott.test', minVersion: v, maxVersion: v, ciphers: 'DEFAULT@SECLEVEL=0' }).then(
                (c) => assert.fail(`handshake succeeded with ${c.protocol}`),
                (e) => e,
            );
            note(`${v}-only client: ${err.code || err.message}`);
            assert.match(String(err.code || err.message), /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|WRONG_VERSION|ECONNRESET|NO_PROTOCOLS|alert/i);
            await assertServing();
        });
    }

    for (const flag of ['-tls1', '-tls1_1']) {
        it(`openssl s_client ${flag} is refused`, { timeout: T }, async () => {
            const r = await runProcess('openssl', ['s_client', flag, '-cipher', 'DEFAULT@SECLEVEL=0', '-connect', `127.0.0.1:${edge.httpsPort}`, '-servername', 'ott.test'],
                { input: '', timeoutMs: 10000 * slow });
            const out = r.stdout + r.stderr;
            note(`openssl s_client ${flag}: exit ${r.code}; ${(/(alert [a-z ]+|no protocols available|wrong version number|unsupported protocol)/i.exec(out) || [out.split('\n')[0]])[0]}`);
            // s_client prints "Protocol : TLSv1.1" even when the handshake failed: the cipher tells
            assert.notEqual(r.code, 0, `s_client ${flag} succeeded:\n${out.slice(-800)}`);
            assert.ok(!/Cipher is (?!\(NONE\))/.test(out) && !/Cipher\s*:\s*(?!0000)\S+/.test(out), `a ${flag} cipher was negotiated:\n${out.slice(-800)}`);
            await assertServing();
        });
    }
});
