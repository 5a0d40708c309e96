// `ott-edge healthcheck [--ready] [--config FILE] [--admin HOST:PORT]`: the image's
// HEALTHCHECK, with no curl. Exit 0 when /livez (or /readyz with --ready) answers 200,
// else 1 -- including when nothing listens or the listener never answers (2 s timeout).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startEdge, startUpstream, runEdge, freePort, adminGet, waitFor } from '../lib/harness.mjs';

test('ready instance: healthcheck and healthcheck --ready exit 0 (address from --admin, --config or env)', async () => {
    const up = await startUpstream();
    const edge = await startEdge({ config: { upstream: up.url }, waitReady: true });
    const admin = `127.0.0.1:${edge.adminPort}`;

    for (const args of [
        ['healthcheck', '--admin', admin],
        ['healthcheck', '--ready', '--admin', admin],
        ['--config', edge.configPath, 'healthcheck'],
        ['--config', edge.configPath, 'healthcheck', '--ready'],
        ['healthcheck', '--ready', '--admin', `:${edge.adminPort}`], // ":PORT" means loopback
    ]) {
        const r = await runEdge(args);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    // As in the container: configuration from the environment only.
    const r = await runEdge(['healthcheck', '--ready'], { env: { OTT_EDGE_LISTEN_ADMIN: admin } });
    assert.equal(r.code, 0, r.stderr);
    await edge.stop();
    await up.stop();
});

test('unready instance (upstream down): --ready exits 1 with the reason, liveness still 0', async () => {
    const edge = await startEdge({ config: { upstream: `http://127.0.0.1:${await freePort()}` } });
    await waitFor(async () => (await adminGet(edge, '/readyz')).status === 503, 10000, '/readyz 503');
    const admin = `127.0.0.1:${edge.adminPort}`;

    const ready = await runEdge(['healthcheck', '--ready', '--admin', admin]);
    assert.equal(ready.code, 1);
    assert.match(ready.stderr, /readyz.*503/);

    const live = await runEdge(['healthcheck', '--admin', admin]);
    assert.equal(live.code, 0, live.stderr);
    await edge.stop();
});

test('nothing listening: exit 1 with "cannot connect"', async () => {
    const port = await freePort();
    for (const extra of [[], ['--ready']]) {
        const r = await runEdge(['healthcheck', ...extra, '--admin', `127.0.0.1:${port}`]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /cannot connect/);
    }
});

test('a listener that never answers: exit 1 after the 2 s timeout, not later', async () => {
    const sockets = new Set();
    const srv = net.createServer((s) => {
        sockets.add(s); // accept, read, never answer
        s.on('error', () => {});
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const t0 = Date.now();
    const r = await runEdge(['healthcheck', '--admin', `127.0.0.1:${srv.address().port}`]);
    const elapsed = Date.now() - t0;
    for (const s of sockets) s.destroy();
    srv.close();
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no answer|timed out/);
    assert.ok(elapsed >= 1900 && elapsed < 5000, `took ${elapsed} ms`);
});

test('a listener that answers garbage or an error status: exit 1', async () => {
    const answers = ['not http at all\r\n', 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom'];
    for (const answer of answers) {
        const srv = net.createServer((s) => {
            s.on('error', () => {});
            s.once('data', () => s.end(answer));
        });
        await new Promise((r) => srv.listen(0, '127.0.0.1', r));
        const r = await runEdge(['healthcheck', '--admin', `127.0.0.1:${srv.address().port}`]);
        srv.close();
        assert.equal(r.code, 1, answer);
        assert.ok(r.stderr.length > 0);
    }
});

test('a bad admin address is reported, exit 1', async () => {
    const r = await runEdge(['healthcheck', '--admin', 'no-port-here']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /admin/);
});
