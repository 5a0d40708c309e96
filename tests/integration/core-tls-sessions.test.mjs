// core-tls-sessions — TLS session resumption (tls.session_lifetime) with rotating ticket
// keys, seen with openssl s_client -sess_out/-sess_in: the lifetime hint a browser gets, a
// resumption right away, a chain of resumptions (each with the ticket the last one got), a
// resumption with a ticket issued under the previous key (after a
// rotation: still accepted, and a new ticket is issued), a ticket older than the kept keys
// refused (full handshake), and resumption off with 0.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startEdge, startUpstream, runProcess, sleep, slow, tmpDir } from '../lib/harness.mjs';

const T = 30000 * slow;

/** One TLS 1.3 connection with one request (so that s_client reads until the server closes,
 *  ticket included); returns {reused, fresh, hint} from s_client's own words. */
async function handshake(port, { sessIn, sessOut } = {}) {
    const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-servername', 'localhost', '-ign_eof'];
    if (sessIn) args.push('-sess_in', sessIn);
    if (sessOut) args.push('-sess_out', sessOut);
    const input = 'GET /api/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n';
    const r = await runProcess('/usr/bin/openssl', args, { input, timeoutMs: 10000 * slow });
    const hint = /TLS session ticket lifetime hint: (\d+)/.exec(r.stdout);
    return { reused: /^Reused, TLSv1\.3/m.test(r.stdout), fresh: /^New, TLSv1\.3/m.test(r.stdout), hint: hint ? Number(hint[1]) : null };
}

describe('TLS session resumption', () => {
    it('the default lifetime is 18 h and a returning client resumes', { timeout: T }, async () => {
        const up = await startUpstream();
        const edge = await startEdge({ config: { upstream: up.url } });
        const dir = tmpDir();
        try {
            const first = await handshake(edge.httpsPort, { sessOut: path.join(dir, 's') });
            assert.ok(first.fresh, 'the first handshake is a full one');
            assert.equal(first.hint, 18 * 3600);
            const again = await handshake(edge.httpsPort, { sessIn: path.join(dir, 's') });
            assert.ok(again.reused, 'the second connection resumes the session');
        } finally {
            await edge.stop();
            await up.stop();
        }
    });

    it('a returning client resumes every time: each resumption hands out a fresh ticket (TLS 1.3 tickets are used once)', { timeout: T }, async () => {
        const up = await startUpstream();
        const edge = await startEdge({ config: { upstream: up.url } });
        const dir = tmpDir();
        try {
            let sess = path.join(dir, 's0');
            assert.ok((await handshake(edge.httpsPort, { sessOut: sess })).fresh);
            for (let i = 1; i <= 4; i++) {
                // each connection resumes with the session the previous connection left
                const next = path.join(dir, `s${i}`);
                const r = await handshake(edge.httpsPort, { sessIn: sess, sessOut: next });
                assert.ok(r.reused, `connection ${i + 1} resumes with the ticket connection ${i} got`);
                assert.equal(r.hint, 18 * 3600, `connection ${i + 1} got a new ticket`);
                sess = next;
            }
        } finally {
            await edge.stop();
            await up.stop();
        }
    });

    it('keys rotate every third of the lifetime: the previous key still decrypts, older ones do not', { timeout: T }, async () => {
        const up = await startUpstream();
        // 3 s lifetime: a new key every 1 s, four kept (tickets decrypt for up to 4 s)
        const edge = await startEdge({ config: { upstream: up.url, tls: { session_lifetime: '3s' } } });
        const dir = tmpDir();
        try {
            const a = await handshake(edge.httpsPort, { sessOut: path.join(dir, 'a') });
            assert.equal(a.hint, 3);
            await sleep(1300);
            await handshake(edge.httpsPort); // a new ticket: the key rotates now
            const b = await handshake(edge.httpsPort, { sessIn: path.join(dir, 'a'), sessOut: path.join(dir, 'a2') });
            assert.ok(b.reused, 'a ticket under the previous key is still accepted after a rotation');
            await sleep(4500);
            await handshake(edge.httpsPort); // rotates again: the key of ticket "a" is now too old
            const c = await handshake(edge.httpsPort, { sessIn: path.join(dir, 'a') });
            assert.ok(c.fresh && !c.reused, 'a ticket older than the kept keys must not resume');
        } finally {
            await edge.stop();
            await up.stop();
        }
    });

    it('tls.session_lifetime 0 turns resumption off', { timeout: T }, async () => {
        const up = await startUpstream();
        const edge = await startEdge({ config: { upstream: up.url, tls: { session_lifetime: '0' } } });
        const dir = tmpDir();
        try {
            const a = await handshake(edge.httpsPort, { sessOut: path.join(dir, 'a') });
            assert.equal(a.hint, null, 'no ticket is issued');
            const b = await handshake(edge.httpsPort, { sessIn: path.join(dir, 'a') });
            assert.ok(!b.reused);
        } finally {
            await edge.stop();
            await up.stop();
        }
    });
});
