// cluster-renewal — issue 12, test 4: renewal of a short-lived certificate (pebble, 30 s) by three
// replicas: one order, every replica swaps to the new serial without dropping an open HTTP/2
// session or WebSocket; a replica whose Redis connection was cut while the renewal was
// announced (it missed the PUBLISH, and could not order either) catches up by the poll once its
// connection is back.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { slow, h2Connect, h2Request, openWs, startUpstream, waitFor } from '../lib/harness.mjs';
import { startPebble, verifiedPeer } from '../lib/pebble.mjs';
import { startRedis, startReplicas, startRelay, redisPort } from '../lib/cluster.mjs';

const T = 80000 * slow;
const NAME = 'a.ott-edge.test';

describe('renewal in a cluster', () => {
    let pebble, redis, relay, replicas, up;
    before(async () => {
        pebble = await startPebble({ slot: 29, validity: 30 });
        redis = await startRedis({ port: redisPort(29) });
        relay = await startRelay(redis.port); // replica 3 reaches Redis through it
        up = await startUpstream();
    });
    after(async () => {
        await replicas?.stop();
        await relay?.stop();
        await redis?.stop();
        await pebble?.stop();
        await up?.stop();
    });

    it('one order; every replica swaps in place; the one that missed the PUBLISH catches up by the poll', { timeout: T }, async () => {
        replicas = await startReplicas({
            pebble,
            redis,
            upstream: up.url,
            redisUrl: (i) => (i === 2 ? `redis://127.0.0.1:${relay.port}` : redis.url()),
            // replica 3 falls due a little later, so that one of the others orders (were it first,
            // it would find the renewed certificate under the lock and make no order either)
            extra: (i) => (i === 2 ? { acme: { ...pebble.edgeAcmeConfig({ challenges: ['http-01'] }), renew_before: '7s' } } : {}),
        });
        const [r1, r2, r3] = replicas.edges;
        const s1 = await replicas.waitSameSerial(20000);
        const orders0 = pebble.orderCount();
        const root = await pebble.root();

        // long-lived connections opened with the first certificate, on two replicas
        const session = await h2Connect(r1.httpsPort, { servername: NAME, ca: root });
        const ws = await openWs(`wss://127.0.0.1:${r2.httpsPort}/api/room/cluster`, { ca: root, servername: NAME });
        try {
            assert.equal((await h2Request(session, '/api/status')).status, 200);
            assert.deepEqual(await ws.nextJson(), { type: 'hello', room: 'cluster' });

            relay.cut(/ott-edge-r3-sub/); // replica 3's subscription is cut before the renewal is due
            await r3.waitForLog(/cluster_subscriber_lost/, 10000 * slow);
            const mark = r3.logs.length;

            // the renewal (~20 s after issuance) by one of replicas 1 and 2
            let s2;
            await waitFor(async () => {
                const [a, b] = await Promise.all([r1, r2].map((e) => verifiedPeer(e.httpsPort, NAME, root).then((p) => p.serialNumber)));
                s2 = a;
                return a !== s1 && a === b;
            }, 40000, 'replicas 1 and 2 serving the renewed certificate');

            // the open connections were not disturbed by the swap
            assert.equal(session.closed || session.destroyed, false, 'HTTP/2 session closed by the swap');
            assert.equal((await h2Request(session, '/api/status')).status, 200);
            ws.send('{"type":"chat","text":"after renewal"}');
            assert.equal(await ws.next(), '{"type":"chat","text":"after renewal"}');
            assert.equal(ws.closeInfo, null);

            // replica 3 catches up without the PUBLISH (its subscription is still cut)
            await waitFor(async () => (await verifiedPeer(r3.httpsPort, NAME, root)).serialNumber === s2, 15000, 'replica 3 catching up');
            await r3.waitForLog(new RegExp(`cluster_certificate_received site=${NAME.replace(/\./g, '\\.')} serial=${s2}`, 'i'), 2000 * slow);
            assert.doesNotMatch(r3.stderr(), /cluster_subscribed/, 'its subscription stayed cut');
            assert.ok(r3.logs.slice(mark).some((l) => /cluster_challenge_mirrored/.test(l)), 'it took the renewal\'s challenges from the poll');
            relay.restore();
            await r3.waitForLog(/cluster_subscribed/, 5000 * slow);
            assert.equal(pebble.orderCount() - orders0, 1, 'one renewal order for three replicas');
            assert.doesNotMatch(r3.stderr(), /acme_order_start domains=\d+ renewal=true/);
        } finally {
            ws.close();
            session.close();
        }
    });
});
