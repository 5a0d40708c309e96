// acme-renewal — a short-lived certificate (pebble certificateValidityPeriod 30 s) is
// renewed in the background when a third of its lifetime remains; the new serial is
// served to new handshakes while an open HTTP/2 connection and an open WebSocket (through
// the proxy to the test upstream) keep working across the swap.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, startUpstream, adminGet, slow, h2Connect, h2Request, openWs } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';

const T = 120000 * slow;
const NAME = 'a.ott-edge.test';

describe('ACME renewal of a short-lived certificate', () => {
    let pebble, up;
    before(async () => {
        pebble = await startPebble({ slot: 4, validity: 30 });
        up = await startUpstream();
    });
    after(async () => {
        await pebble?.stop();
        await up?.stop();
    });

    it('renews before expiry; HTTP/2 and WebSocket connections survive; a new serial is served', { timeout: T }, async () => {
        const edge = await startEdge({ config: edgeConfigFor(pebble, { acme: { challenges: ['http-01'] }, upstream: up.url }) });
        let session, ws;
        try {
            await edge.waitForLog(/acme_certificate_installed/, 20000);
            const root = await pebble.root();
            const first = await verifiedPeer(pebble.ports.tlsPort, NAME, root);
            const next = await edge.waitForLog(/acme_next_attempt/, 5000);
            const inS = Number(/in_s=(\d+)/.exec(next)[1]);
            assert.ok(inS >= 15 && inS <= 21, `renewal scheduled in ${inS} s, expected ~20 s (a third of 30 s left)`);

            // long-lived connections opened with the first certificate
            session = await h2Connect(pebble.ports.tlsPort, { servername: NAME, ca: root });
            assert.equal((await h2Request(session, '/api/status')).status, 200);
            ws = await openWs(`wss://127.0.0.1:${pebble.ports.tlsPort}/api/room/renewal`, { ca: root, servername: NAME });
            assert.deepEqual(await ws.nextJson(), { type: 'hello', room: 'renewal' });

            // the renewal: a second certificate installed while they are open
            await edge.waitForLog(/acme_order_start domains=\d+ renewal=true/, 40000);
            await (async () => {
                const end = Date.now() + 20000 * slow;
                while (edge.logs.filter((l) => /acme_certificate_installed/.test(l)).length < 2) {
                    if (Date.now() > end) throw new Error(`no renewal:\n${edge.stderr()}`);
                    await new Promise((r) => setTimeout(r, 100));
                }
            })();
            const second = await verifiedPeer(pebble.ports.tlsPort, NAME, root);
            assert.notEqual(second.serialNumber, first.serialNumber, 'the same serial is still served after renewal');

            // the old connections still work
            assert.equal(session.closed || session.destroyed, false, 'HTTP/2 session was closed by the renewal');
            assert.equal((await h2Request(session, '/api/status')).status, 200);
            ws.send('{"type":"chat","text":"after renewal"}');
            assert.equal(await ws.next(), '{"type":"chat","text":"after renewal"}');
            assert.equal(ws.closeInfo, null);

            const m = (await adminGet(edge, '/metrics')).body;
            assert.match(m, /ott_edge_acme_renewals_total\{result="ok"\} [2-9]/);
            assert.doesNotMatch(edge.stderr(), /acme_failed/);
        } finally {
            ws?.close();
            session?.close();
            await edge.stop();
        }
    });
});
