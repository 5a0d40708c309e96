// core-websocket — OTT's room WebSocket through wss:// with a real client (`ws`): echo, routing
// on the Upgrade header (REST on the same path), close codes passing through, the idle timeout
// (45 s idle survives: the slow test; a short proxy.websocket_idle_timeout closes).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { slow, sleep, startUpstream, startEdge, openWs, makeCert, curl, h2Connect, h2Request, httpsGet } from '../lib/harness.mjs';

const T = 30000 * slow;

describe('WebSocket through wss://', () => {
    let up, edge, cert;
    before(async () => {
        // No pings from the upstream here: idle means idle in both directions.
        up = await startUpstream({ env: { OTT_UPSTREAM_PING_MS: '0' } });
        cert = makeCert({ cn: 'ws.test', sans: ['ws.test', 'IP:127.0.0.1'] });
        edge = await startEdge({ config: { upstream: up.url, tls: { cert_file: cert.certFile, key_file: cert.keyFile } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('echoes text and binary messages on /api/room/x (certificate verified)', { timeout: T }, async () => {
        const c = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/x`, { ca: cert.pem, servername: 'ws.test' });
        try {
            assert.deepEqual(await c.nextJson(), { type: 'hello', room: 'x' });
            c.send('{"type":"chat","text":"hi"}');
            assert.equal(await c.next(), '{"type":"chat","text":"hi"}');
            const big = 'y'.repeat(1024 * 1024);
            c.send(big);
            assert.equal((await c.next(10000)).length, big.length);
            const bin = Buffer.from([0, 1, 2, 255, 254]);
            const got = new Promise((resolve) => c.ws.once('message', (d, isBinary) => resolve({ d, isBinary })));
            c.ws.send(bin);
            const m = await got;
            assert.equal(m.isBinary, true);
            assert.deepEqual(Buffer.from(m.d), bin);
        } finally {
            c.close();
        }
    });

    it('connects with ?reconnect=true and a custom Host', { timeout: T }, async () => {
        const c = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/y?reconnect=true`, { headers: { Host: 'ott.example.test' } });
        try {
            assert.deepEqual(await c.nextJson(), { type: 'hello', room: 'y' });
        } finally {
            c.close();
        }
    });

    it('routes on Upgrade, not on the path: GET /api/room/x without Upgrade gets the REST JSON', { timeout: T }, async () => {
        const c = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/restroom`);
        try {
            await c.nextJson();
            // While one socket is in the room the REST answer counts it.
            const h1 = await httpsGet(edge.httpsPort, '/api/room/restroom');
            assert.equal(h1.status, 200);
            assert.deepEqual(JSON.parse(h1.body), { name: 'restroom', isTemporary: true, users: 1 });
            const s = await h2Connect(edge.httpsPort);
            try {
                const h2 = await h2Request(s, '/api/room/restroom');
                assert.equal(h2.status, 200);
                assert.deepEqual(JSON.parse(h2.body), { name: 'restroom', isTemporary: true, users: 1 });
            } finally {
                s.close();
            }
            const r = await curl(['-k', '--http2', '-w', '\n%{http_version}', `${edge.url}/api/room/restroom`]);
            assert.match(r.stdout, /"users":1\}\n2$/);
        } finally {
            c.close();
        }
    });

    it('many WebSockets at once each get their own echo', { timeout: T }, async () => {
        const conns = await Promise.all(Array.from({ length: 20 }, (_, i) => openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/many${i % 3}`)));
        try {
            for (const c of conns) await c.nextJson();
            conns.forEach((c, i) => c.send(`m${i}`));
            for (const [i, c] of conns.entries()) assert.equal(await c.next(), `m${i}`);
        } finally {
            for (const c of conns) c.close();
        }
    });

    it('a close from the client reaches the upstream (room empties)', { timeout: T }, async () => {
        const c = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/leave`);
        await c.nextJson();
        c.close(1000);
        const info = await c.closed;
        assert.equal(info.code, 1000);
        let users = -1;
        for (let i = 0; i < 30 && users !== 0; i++) {
            users = JSON.parse((await httpsGet(edge.httpsPort, '/api/room/leave')).body).users;
            if (users !== 0) await sleep(100);
        }
        assert.equal(users, 0);
    });

    it('survives 45 s idle and still echoes (SLOW: longer than every library default timeout)', { timeout: 90000 * slow }, async () => {
        const c = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/idle`);
        try {
            await c.nextJson();
            const t0 = Date.now();
            let closedAt = null;
            c.closed.then(() => (closedAt = Date.now() - t0));
            await sleep(45000);
            assert.equal(c.closeInfo, null, `closed after ${closedAt} ms idle: ${JSON.stringify(c.closeInfo)}`);
            c.send('still here');
            assert.equal(await c.next(), 'still here');
        } finally {
            c.close();
        }
    });
});

describe('WebSocket close codes and proxy.websocket_idle_timeout', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream({ env: { OTT_UPSTREAM_PING_MS: '0' } });
        edge = await startEdge({ config: { upstream: up.url, proxy: { websocket_idle_timeout: '2s' } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('an idle WebSocket is closed after proxy.websocket_idle_timeout; traffic keeps it open', { timeout: T }, async () => {
        const busy = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/busy`);
        const idle = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/quiet`);
        await busy.nextJson();
        await idle.nextJson();
        for (let i = 0; i < 8; i++) {
            await sleep(500);
            busy.send(`b${i}`);
            assert.equal(await busy.next(), `b${i}`);
        }
        // 4 s have passed: the quiet one must be gone, the busy one alive.
        const info = await Promise.race([idle.closed, sleep(3000 * slow).then(() => null)]);
        assert.ok(info, 'idle WebSocket still open after 2x websocket_idle_timeout');
        assert.equal(busy.closeInfo, null, 'a busy WebSocket was closed');
        busy.close();
    });

    it("the upstream's close code (1001 on OTT shutdown) reaches the client", { timeout: T }, async () => {
        const c = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/bye`);
        await c.nextJson();
        await up.stop();
        const info = await Promise.race([c.closed, sleep(5000 * slow).then(() => null)]);
        assert.ok(info, 'WebSocket not closed after the upstream went away');
        assert.equal(info.code, 1001);
    });
});
