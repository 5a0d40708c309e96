// cluster-coldstart — issue 12, test 1: three replicas behind HAProxy (TCP, round robin, on
// the ports pebble validates against) start on an empty Redis: exactly one account and one
// order at pebble, every replica serves the same serial within seconds; validation requests
// really land on replicas that did not order (they answer from the mirrored challenge).
// Once for HTTP-01 and once for TLS-ALPN-01. Also: only keys under the prefix are written,
// the private keys in Redis are encrypted when cluster.encryption_key_file is set.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { adminGet, slow, tmpDir, startUpstream, waitFor, TESTS_DIR } from '../lib/harness.mjs';
import { startPebble } from '../lib/pebble.mjs';
import { startRedis, startReplicas, redisPort, accountCount } from '../lib/cluster.mjs';

const T = 60000 * slow;

function metric(text, name) {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : null;
}

for (const [slot, challenge] of [
    [23, 'http-01'],
    [24, 'tls-alpn-01'],
]) {
    describe(`cold start of three replicas on an empty Redis (${challenge})`, () => {
        let pebble, redis, replicas, up;
        const keyFile = path.join(tmpDir('ott-edge-key-'), 'cluster.key');
        before(async () => {
            writeFileSync(keyFile, randomBytes(32).toString('base64') + '\n');
            // the CA starts once the three replicas listen (as a load balancer sends traffic only
            // to started replicas): its validation requests then really spread over all three
            pebble = await startPebble({ slot, start: false });
            up = await startUpstream();
            redis = await startRedis({ port: redisPort(slot) });
            redis.cli('SET', 'room:lobby', 'ott-data'); // OTT's own keys must stay untouched
            redis.cli('HSET', 'session:abc', 'user', 'x');
        });
        after(async () => {
            await replicas?.stop();
            await redis?.stop();
            await pebble?.stop();
            await up?.stop();
        });

        it('one account, one order, the same certificate on every replica', { timeout: T }, async () => {
            replicas = await startReplicas({
                pebble,
                redis,
                challenges: [challenge],
                upstream: up.url,
                acme: { retry_base: '200ms' }, // the CA is not up yet: retried soon
                cluster: { encryption_key_file: keyFile },
            });
            const t0 = Date.now();
            await pebble.start();
            const serial = await replicas.waitSameSerial(20000);
            const took = Date.now() - t0;
            assert.ok(serial, 'a serial');
            // let any straggler (a second order) show up
            await new Promise((r) => setTimeout(r, 1500));
            assert.equal(pebble.orderCount(), 1, `orders at pebble:\n${pebble.logs().slice(-3000)}`);
            assert.equal(pebble.issuedCount(), 1);
            assert.equal(accountCount(pebble), 1, 'one account for all replicas');
            const logs = replicas.edges.map((e) => e.stderr());
            // (attempts while the CA was not up yet fail before any order, on whichever replica held the lock)
            const orderers = logs.filter((l) => /acme_certificate_installed/.test(l));
            assert.equal(orderers.length, 1, 'exactly one replica got a certificate from the CA');
            const receivers = logs.filter((l) => /cluster_certificate_received/.test(l));
            assert.equal(receivers.length, 2, 'the two others took it from Redis');
            // the CA's validation requests went through the load balancer to every replica:
            // the ones that did not order answered from the mirrored challenge
            const fam = challenge === 'http-01' ? 'ott_edge_acme_http01_served_total' : 'ott_edge_acme_tls_alpn_challenges_total';
            const served = [];
            for (const e of replicas.edges) served.push(metric((await adminGet(e, '/metrics')).body, fam));
            const holder = logs.findIndex((l) => /acme_certificate_installed/.test(l));
            const others = served.filter((_, i) => i !== holder).reduce((a, b) => a + b, 0);
            assert.ok(others >= 1, `validations answered by replicas that did not order: ${JSON.stringify(served)}`);
            for (let i = 0; i < 3; i++) if (i !== holder) assert.match(logs[i], /cluster_challenge_mirrored/);
            // cluster metrics and readiness
            for (const e of replicas.edges) {
                const m = (await adminGet(e, '/metrics')).body;
                assert.equal(metric(m, 'ott_edge_cluster_redis_up'), 1);
                await waitFor(async () => (await adminGet(e, '/readyz')).status === 200, 10000, '/readyz 200');
            }
            // the cluster families are the ones README's "Several replicas" table documents
            const readme = readFileSync(path.join(TESTS_DIR, '..', 'README.md'), 'utf8');
            let sec = readme.slice(readme.indexOf('\n## Several replicas\n') + 1);
            sec = sec.slice(0, sec.indexOf('\n## '));
            const documented = [...sec.matchAll(/^\| `(ott_edge_cluster_[a-z_]+)` \|/gm)].map((x) => x[1]).sort();
            const text = (await adminGet(replicas.edges[holder], '/metrics')).body;
            const have = [...new Set([...text.matchAll(/^# TYPE (ott_edge_cluster_[a-z_]+) /gm)].map((x) => x[1]))].sort();
            assert.ok(documented.length >= 4);
            assert.deepEqual(have, documented, 'README documents every ott_edge_cluster_* family /metrics has');
            const received = replicas.edges.map((e, i) => (i === holder ? 0 : 1));
            for (let i = 0; i < 3; i++)
                assert.equal(metric((await adminGet(replicas.edges[i], '/metrics')).body, 'ott_edge_cluster_certificates_received_total'), received[i]);
            // Redis: only keys under the prefix, OTT's keys untouched, the keys encrypted
            const keys = redis.keys();
            assert.deepEqual(keys.filter((k) => !k.startsWith('ott-edge:')).sort(), ['room:lobby', 'session:abc']);
            assert.equal(redis.cli('GET', 'room:lobby'), 'ott-data');
            assert.ok(keys.includes('ott-edge:cert:a.ott-edge.test'), JSON.stringify(keys));
            assert.ok(keys.includes('ott-edge:account'));
            assert.match(redis.cli('HGET', 'ott-edge:cert:a.ott-edge.test', 'key'), /^oe-gcm1:/);
            assert.match(redis.cli('HGET', 'ott-edge:account', 'key'), /^oe-gcm1:/);
            assert.doesNotMatch(redis.cli('HGETALL', 'ott-edge:cert:a.ott-edge.test'), /PRIVATE KEY/);
            // challenge records are gone after the order (deleted, or expiring)
            assert.deepEqual(redis.keys('ott-edge:chal:*'), []);
            console.log(`# ${challenge}: three replicas serving the same certificate ${took} ms after the CA started`);
        });

        it('a restart of every replica makes no order (each serves its local copy and Redis agrees)', { timeout: T }, async () => {
            const before = pebble.orderCount();
            const dirs = replicas.stateDirs;
            await replicas.stop();
            replicas = await startReplicas({ pebble, redis, challenges: [challenge], stateDirs: dirs, acme: { retry_base: '200ms' }, cluster: { encryption_key_file: keyFile } });
            await replicas.waitSameSerial(10000);
            await new Promise((r) => setTimeout(r, 1000));
            assert.equal(pebble.orderCount(), before);
            for (const e of replicas.edges) assert.doesNotMatch(e.stderr(), /acme_order_start/);
        });
    });
}
