// cluster-config — issue 12, test 7: a Redis configuration that cannot work stops ott-edge at
// start with a clear message and exit code 2 (wrong password, missing password, ACL denial,
// wrong database, rediss://, bad key file); an unreachable Redis is logged and retried while
// ott-edge serves; the key prefix never touches OTT's keys (an ACL user limited to
// ~ott-edge:* works). A real redis-server with a password and ACL users.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startEdge, adminGet, slow, tmpDir, waitFor, freePort } from '../lib/harness.mjs';
import { startRedis, redisPort } from '../lib/cluster.mjs';

const T = 30000 * slow;
const ACME = { directory: 'https://127.0.0.1:1/dir' }; // never reached: these tests stop before any order

describe('cluster.redis that cannot work', () => {
    let redis;
    before(async () => {
        redis = await startRedis({
            port: redisPort(30),
            password: 'right-password',
            users: [
                { name: 'edge', password: 'edge-pw', rules: '~ott-edge:* &ott-edge:* +@all -@dangerous' },
                { name: 'narrow', password: 'narrow-pw', rules: '~other:* &other:* +@all' },
            ],
        });
        redis.cli('SET', 'room:lobby', 'ott-data');
    });
    after(async () => redis?.stop());

    const run = (redisUrl, extra = {}) =>
        startEdge({
            config: { domains: ['c.ott-edge.test'], acme: ACME, cluster: { redis: redisUrl, node_id: 'c1', ...extra } },
            expectExit: true,
            timeoutMs: 15000,
        });

    it('a wrong password: exit 2, Redis\'s answer in the message', { timeout: T }, async () => {
        const r = await run(redis.url({ password: 'wrong' }));
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /startup_failed .*Redis refused the login.*(WRONGPASS|invalid)/);
    });

    it('no password where Redis needs one: exit 2', { timeout: T }, async () => {
        const r = await run(`redis://127.0.0.1:${redis.port}`);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /startup_failed .*NOAUTH/);
    });

    it('an ACL user without the prefix\'s keys: exit 2 naming the ACL rules to grant', { timeout: T }, async () => {
        const r = await run(redis.url({ user: 'narrow', password: 'narrow-pw' }));
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /startup_failed .*NOPERM.*~ott-edge:\*/);
    });

    it('a prefix the ACL user may not use: exit 2', { timeout: T }, async () => {
        const r = await run(redis.url({ user: 'edge', password: 'edge-pw' }), { key_prefix: 'room:' });
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /NOPERM/);
        assert.equal(redis.cli('GET', 'room:lobby'), 'ott-data');
    });

    it('a database that does not exist: exit 2', { timeout: T }, async () => {
        const r = await run(redis.url({ db: 99 }));
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /startup_failed .*database 99.*out of range/);
    });

    it('rediss:// is a configuration error naming the key and the known limit', { timeout: T }, async () => {
        const r = await run(`rediss://127.0.0.1:${redis.port}`);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /config\.yaml:\d+: cluster\.redis: rediss:\/\/ \(TLS to Redis\) is a known limit/);
    });

    it('an encryption key file that is not 32 bytes: exit 2 naming the key', { timeout: T }, async () => {
        const f = path.join(tmpDir('ott-edge-key-'), 'short.key');
        writeFileSync(f, 'too short\n');
        const r = await run(redis.url(), { encryption_key_file: f });
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /cluster\.encryption_key_file.*32-byte key/);
    });

    it('the ACL user limited to ~ott-edge:* works, and OTT\'s keys are untouched', { timeout: T }, async () => {
        const edge = await startEdge({
            config: { domains: ['c.ott-edge.test'], acme: ACME, cluster: { redis: redis.url({ user: 'edge', password: 'edge-pw' }), node_id: 'c1' } },
        });
        try {
            await edge.waitForLog(/cluster_connected .*node=c1/, 5000 * slow);
            await edge.waitForLog(/cluster_account /, 5000 * slow);
            const m = (await adminGet(edge, '/metrics')).body;
            assert.match(m, /ott_edge_cluster_redis_up 1/);
            const k = JSON.parse((await adminGet(edge, '/status.json')).body).cluster;
            assert.equal(k.node, 'c1');
            assert.equal(k.redis_up, true);
            assert.equal(k.down_since, null);
        } finally {
            await edge.stop();
        }
        assert.equal(redis.cli('GET', 'room:lobby'), 'ott-data');
        const keys = redis.keys();
        assert.deepEqual(keys.filter((k) => !k.startsWith('ott-edge:')), ['room:lobby']);
        assert.ok(keys.includes('ott-edge:account'), JSON.stringify(keys));
        // the password never shows in check-config's output
        const cc = await startEdge({
            config: { domains: ['c.ott-edge.test'], acme: ACME, cluster: { redis: redis.url({ user: 'edge', password: 'edge-pw' }) } },
            args: ['check-config'],
            expectExit: true,
        });
        assert.equal(cc.code, 0, cc.stderr);
        assert.doesNotMatch(cc.stdout + cc.stderr, /edge-pw/);
    });

    it('warns when Redis may evict ott-edge\'s keys (maxmemory-policy allkeys-*)', { timeout: T }, async () => {
        const evicting = await startRedis({ port: redisPort(30, 1), extra: ['maxmemory-policy allkeys-lru'] });
        const edge = await startEdge({
            config: { domains: ['c.ott-edge.test'], acme: ACME, cluster: { redis: evicting.url(), node_id: 'c1' } },
        });
        try {
            await edge.waitForLog(/warn cluster_redis_may_evict maxmemory_policy=allkeys-lru/, 5000 * slow);
        } finally {
            await edge.stop();
            await evicting.stop();
        }
        assert.doesNotMatch(edge.stderr(), /startup_failed/, 'a warning, not an error');
    });

    it('an unreachable Redis is logged and retried while ott-edge serves (not an exit)', { timeout: T }, async () => {
        const port = await freePort();
        const edge = await startEdge({
            config: { domains: ['c.ott-edge.test'], acme: ACME, cluster: { redis: `redis://127.0.0.1:${port}`, node_id: 'c1' } },
        });
        try {
            await edge.waitForLog(/cluster_redis_down .*cannot connect to Redis/, 5000 * slow);
            await edge.waitForLog(/cluster_order_deferred .*Redis unreachable/, 5000 * slow);
            assert.equal((await adminGet(edge, '/livez')).status, 200);
            const m = (await adminGet(edge, '/metrics')).body;
            assert.match(m, /ott_edge_cluster_redis_up 0/);
            const k = JSON.parse((await adminGet(edge, '/status.json')).body).cluster;
            assert.equal(k.redis_up, false, 'the status page says Redis is down');
            assert.ok(k.down_since > 0);
            assert.match(k.last_error, /connect/i);
            // Redis appears: connected without a restart
            const late = await startRedis({ port });
            try {
                await waitFor(async () => /ott_edge_cluster_redis_up 1/.test((await adminGet(edge, '/metrics')).body), 15000 * slow, 'redis up');
                await edge.waitForLog(/cluster_redis_up/, 1000);
            } finally {
                await late.stop();
            }
        } finally {
            await edge.stop();
        }
    });
});
