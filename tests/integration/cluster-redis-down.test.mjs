// cluster-redis-down — issue 12, test 5: Redis down at start and during a renewal. Replicas keep
// serving their local copy (state_dir), place no order while the lock cannot be taken, answer
// /readyz 200 with the reason shown, and recover when Redis returns; Redis restarted empty (no
// persistence) is re-seeded from the local copies without a new order.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { adminGet, slow, waitFor, sleep, startUpstream } from '../lib/harness.mjs';
import { startPebble } from '../lib/pebble.mjs';
import { startRedis, startReplicas, redisPort } from '../lib/cluster.mjs';

const T = 60000 * slow;

async function readyz(e) {
    const r = await adminGet(e, '/readyz');
    return { status: r.status, json: JSON.parse(r.body) };
}

describe('Redis down at start; Redis back empty', () => {
    let pebble, redis, replicas, up;
    before(async () => {
        pebble = await startPebble({ slot: 27 });
        redis = await startRedis({ port: redisPort(27) });
        up = await startUpstream();
    });
    after(async () => {
        await replicas?.stop();
        await redis?.stop();
        await pebble?.stop();
        await up?.stop();
    });

    it('serves the local copies while Redis is down, orders nothing, re-seeds Redis when it is back empty', { timeout: T }, async () => {
        replicas = await startReplicas({ pebble, redis, upstream: up.url });
        const serial = await replicas.waitSameSerial(20000);
        const dirs = replicas.stateDirs;
        await replicas.stop();
        await redis.stop();

        replicas = await startReplicas({ pebble, redis, upstream: up.url, stateDirs: dirs });
        // the local copies are served at once (ACME loads them as it starts, a moment after the listeners)
        await waitFor(async () => (await replicas.servedSerials()).every((x) => x === serial), 5000, 'the local copies served');
        for (const e of replicas.edges) {
            await waitFor(async () => (await readyz(e)).status === 200, 10000 * slow, '/readyz 200');
            const r = await readyz(e);
            assert.equal(r.json.cluster, 'redis down');
            assert.match(r.json.reason, /Redis unreachable .*serving the local copy/);
            assert.match((await adminGet(e, '/metrics')).body, /ott_edge_cluster_redis_up 0/);
            await e.waitForLog(/cluster_redis_(down|unreachable)/, 1000);
        }
        await sleep(2000);
        assert.equal(pebble.orderCount(), 1, 'no order while Redis is down');

        await redis.start(); // empty: no persistence
        await waitFor(() => redis.cli('HGET', 'ott-edge:cert:a.ott-edge.test', 'state') === 'reseeded', 15000 * slow, 'Redis re-seeded');
        assert.equal(redis.cli('HGET', 'ott-edge:cert:a.ott-edge.test', 'serial').toLowerCase(), serial.toLowerCase());
        assert.ok(redis.cli('HGET', 'ott-edge:account', 'key').length > 0, 'the account re-seeded too');
        for (const e of replicas.edges) {
            await waitFor(async () => (await readyz(e)).json.cluster === 'redis up', 10000 * slow, 'readyz: redis up');
        }
        await sleep(1000);
        assert.equal(pebble.orderCount(), 1, 'no new order');
        assert.deepEqual(await replicas.servedSerials(), [serial, serial, serial]);
        const reseeders = replicas.edges.filter((e) => /cluster_certificate_reseeded/.test(e.stderr()));
        assert.ok(reseeders.length >= 1);
    });
});

describe('Redis down during a renewal', () => {
    let pebble, redis, replicas, up;
    before(async () => {
        pebble = await startPebble({ slot: 28, validity: 45 }); // renewal due 30 s after issuance
        redis = await startRedis({ port: redisPort(28) });
        up = await startUpstream();
    });
    after(async () => {
        await replicas?.stop();
        await redis?.stop();
        await pebble?.stop();
        await up?.stop();
    });

    it('no order while Redis is down, ready meanwhile; the renewal happens once it is back', { timeout: T }, async () => {
        replicas = await startReplicas({ pebble, redis, upstream: up.url });
        const s1 = await replicas.waitSameSerial(20000);
        await redis.stop();
        // the renewal falls due with Redis down: deferred on every replica
        for (const e of replicas.edges) await e.waitForLog(/cluster_order_deferred .*Redis unreachable/, 40000 * slow);
        const orders = pebble.orderCount();
        for (const e of replicas.edges) {
            const r = await readyz(e);
            assert.equal(r.status, 200, 'the certificate is still valid: ready');
            assert.match(r.json.reason, /Redis unreachable/);
        }
        await sleep(2000);
        assert.equal(pebble.orderCount(), orders, 'no order while the lock cannot be taken');
        assert.deepEqual(await replicas.servedSerials(), [s1, s1, s1]);

        await redis.start();
        const s2 = await replicas.waitSameSerial(20000, s1);
        assert.notEqual(s2, s1);
        await sleep(1000);
        assert.equal(pebble.orderCount(), orders + 1, 'one renewal order for the three replicas');
    });
});
