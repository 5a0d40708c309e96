// cluster-lock — issue 12, tests 2 and 3: the issuance lock's TTL and fencing token.
//   2. The lock holder is SIGKILLed mid-order (its finalize request held by a fault proxy in
//      front of pebble): the lock expires, another replica completes; one certificate only.
//   3. The holder is SIGSTOPped mid-order past the lock TTL, then resumed: another replica
//      has completed meanwhile; the resumed holder's extension fails cleanly and its late
//      certificate is refused by the fencing token, so the newer certificate stays.
// Three replicas behind HAProxy (the test takes a dead or stopped replica out of the rotation
// through HAProxy's runtime API, as a health check would), real pebble validation, lock TTL 3 s.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { adminGet, slow, waitFor, sleep } from '../lib/harness.mjs';
import { startPebble } from '../lib/pebble.mjs';
import { startFaultProxy } from '../lib/faultproxy.mjs';
import { startRedis, startReplicas, redisPort } from '../lib/cluster.mjs';

const T = 80000 * slow;
const isFinalize = (req) => req.method === 'POST' && /finalize/.test(req.url);

/** A matcher that matches only the first finalize request. */
function firstFinalize() {
    let seen = 0;
    return (req) => isFinalize(req) && seen++ === 0;
}

function serialInRedis(redis, site) {
    const chain = redis.cli('HGET', `ott-edge:cert:${site}`, 'serial');
    return chain.toUpperCase();
}

describe('the issuance lock: TTL and fencing', () => {
    let pebble, redis, proxy, replicas;
    before(async () => {
        pebble = await startPebble({ slot: 25 });
        redis = await startRedis({ port: redisPort(25) });
        proxy = await startFaultProxy({
            target: `https://127.0.0.1:${pebble.ports.acme}`,
            ca: readFileSync(pebble.caFile),
            cert: readFileSync(path.join(pebble.dir, 'localhost.pem')),
            key: readFileSync(path.join(pebble.dir, 'localhost.key')),
        });
    });
    after(async () => {
        await replicas?.stop();
        await proxy?.close();
        await redis?.stop();
        await pebble?.stop();
    });

    const start = (names) =>
        startReplicas({
            pebble,
            redis,
            names,
            acme: { directory: `${proxy.url}/dir` },
        });

    /** The replica that took the lock and started ordering. */
    async function holderOf(r) {
        let i = -1;
        await waitFor(() => (i = r.edges.findIndex((e) => /acme_order_start/.test(e.stderr()))) >= 0, 15000 * slow, 'a replica ordering');
        return i;
    }

    it('holder SIGKILLed mid-order: the lock expires, another replica completes, one certificate', { timeout: T }, async () => {
        const names = ['k.ott-edge.test'];
        proxy.setFault({ type: 'hang' }, firstFinalize()); // never forwarded: the killed order issues nothing
        const orders0 = pebble.orderCount(), issued0 = pebble.issuedCount();
        replicas = await start(names);
        const h = await holderOf(replicas);
        await waitFor(() => proxy.requests.some((r) => r.fault === 'hang'), 15000 * slow, 'the holder waiting on finalize');
        replicas.edges[h].kill('SIGKILL');
        const t0 = Date.now();
        await replicas.haproxy.setServer(h, 'maint'); // what the load balancer's health check would do
        const survivors = replicas.edges.filter((_, i) => i !== h);
        const root = await pebble.root();
        const { verifiedPeer } = await import('../lib/pebble.mjs');
        let serials = [];
        await waitFor(async () => {
            serials = await Promise.all(survivors.map((e) => verifiedPeer(e.httpsPort, names[0], root).then((p) => p.serialNumber, () => null)));
            return serials[0] && serials[0] === serials[1];
        }, 20000 * slow, 'both survivors serving one certificate');
        const took = Date.now() - t0;
        assert.ok(took >= 1500, `another replica ordered ${took} ms after the kill: before the 3 s lock could expire?`);
        await sleep(2000); // no second certificate while the first is valid
        assert.equal(pebble.issuedCount() - issued0, 1, 'one certificate issued');
        assert.equal(pebble.orderCount() - orders0, 2, 'the killed order and the one that completed');
        const ordered = survivors.filter((e) => /acme_order_start/.test(e.stderr()));
        assert.equal(ordered.length, 1, 'exactly one survivor ordered');
        assert.match(ordered[0].stderr(), /cluster_lock_acquired site=k\.ott-edge\.test token=2/);
        const other = survivors.find((e) => e !== ordered[0]);
        assert.match(other.stderr(), /cluster_certificate_received/);
        assert.equal(serialInRedis(redis, names[0]), serials[0].toUpperCase());
        proxy.setFault(null);
        await replicas.stop();
        replicas = null;
    });

    it('holder SIGSTOPped past the lock TTL, then resumed: its extension and its write are refused', { timeout: T }, async () => {
        const names = ['s.ott-edge.test'];
        proxy.setFault({ type: 'delay', ms: 7000 }, firstFinalize()); // the holder's finalize completes late
        const issued0 = pebble.issuedCount();
        replicas = await start(names);
        const h = await holderOf(replicas);
        await waitFor(() => proxy.requests.some((r) => r.fault === 'delay'), 15000 * slow, 'the holder waiting on finalize');
        const holder = replicas.edges[h];
        holder.kill('SIGSTOP');
        await replicas.haproxy.setServer(h, 'maint');
        const others = replicas.edges.filter((_, i) => i !== h);
        const root = await pebble.root();
        const { verifiedPeer } = await import('../lib/pebble.mjs');
        let serials = [];
        await waitFor(async () => {
            serials = await Promise.all(others.map((e) => verifiedPeer(e.httpsPort, names[0], root).then((p) => p.serialNumber, () => null)));
            return serials[0] && serials[0] === serials[1];
        }, 25000 * slow, 'the two others serving the certificate of the second holder');
        const newer = serials[0];
        const held = proxy.requests.find((r) => r.fault === 'delay');
        await sleep(Math.max(0, held.t + 7300 - Date.now())); // the delayed finalize has been answered by now
        holder.kill('SIGCONT');
        await replicas.haproxy.setServer(h, 'ready');
        await holder.waitForLog(/cluster_write_fenced/, 20000 * slow);
        await holder.waitForLog(/cluster_lock_lost/, 5000 * slow);
        // the newer certificate stays in Redis and is what the resumed holder serves
        assert.equal(serialInRedis(redis, names[0]), newer.toUpperCase());
        await waitFor(async () => (await verifiedPeer(holder.httpsPort, names[0], root)).serialNumber === newer, 10000 * slow,
            'the resumed holder serving the newer certificate');
        assert.equal(pebble.issuedCount() - issued0, 2, 'the late order did get a certificate from the CA (then dropped)');
        const m = (await adminGet(holder, '/metrics')).body;
        assert.match(m, /ott_edge_cluster_lock_extend_failures_total [1-9]/);
        assert.match(holder.stderr(), /cluster_write_fenced .*the issuance lock is no longer ours/);
        for (const e of others) assert.doesNotMatch(e.stderr(), /cluster_write_fenced/);
        await sleep(1000);
        assert.equal(serialInRedis(redis, names[0]), newer.toUpperCase(), 'not overwritten later either');
    });
});
