// cluster-baddata — issue 12, test 6: bad data in Redis is rejected with a clear error and the
// served certificate is kept: a truncated chain, a key that does not match its certificate, a
// key encrypted under another encryption key, a key stored in clear where keys are encrypted.
// Each bad record is announced like a real change (generation + PUBLISH); a replica then
// writes its good local copy back (no new order).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { randomBytes, createCipheriv, generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { slow, tmpDir, waitFor, sleep } from '../lib/harness.mjs';
import { startPebble } from '../lib/pebble.mjs';
import { startRedis, startReplicas, redisPort } from '../lib/cluster.mjs';

const T = 40000 * slow;
const SITE = 'a.ott-edge.test';
const CERT = `ott-edge:cert:${SITE}`;

function seal(key, aad, plaintext) {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    return 'oe-gcm1:' + Buffer.concat([iv, ct, c.getAuthTag()]).toString('base64');
}

describe('bad data in Redis', () => {
    let pebble, redis, replicas, serial, chain0;
    const key = randomBytes(32);
    const keyFile = path.join(tmpDir('ott-edge-key-'), 'k');
    const otherKeyPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    before(async () => {
        writeFileSync(keyFile, key);
        pebble = await startPebble({ slot: 26 });
        redis = await startRedis({ port: redisPort(26) });
        replicas = await startReplicas({ pebble, redis, n: 2, names: [SITE], cluster: { encryption_key_file: keyFile } });
        serial = await replicas.waitSameSerial(20000);
        chain0 = redis.cli('HGET', CERT, 'chain');
    });
    after(async () => {
        await replicas?.stop();
        await redis?.stop();
        await pebble?.stop();
    });

    /** Writes a bad field, announces it, and checks it is rejected and repaired. */
    async function badRecord(field, value, why) {
        const marks = replicas.edges.map((e) => e.logs.length);
        redis.cli('HSET', CERT, field, value);
        const g = redis.cli('HINCRBY', 'ott-edge:gen', SITE, '1');
        redis.cli('PUBLISH', 'ott-edge:events', `cert ${SITE} ${g}`);
        let line;
        await waitFor(() => (line = replicas.edges.flatMap((e, i) => e.logs.slice(marks[i])).find((l) => /cluster_certificate_rejected/.test(l))),
            10000 * slow, `a replica rejecting the record (${why})`);
        assert.match(line, why);
        assert.match(line, /action="the served certificate is kept/);
        // still serving the good certificate, and Redis repaired from a local copy
        assert.deepEqual(await replicas.servedSerials(), [serial, serial]);
        await waitFor(() => redis.cli('HGET', CERT, 'state') === 'reseeded' && redis.cli('HGET', CERT, 'chain') === chain0, 10000 * slow,
            'the good certificate written back to Redis');
        await waitFor(() => replicas.edges.flatMap((e, i) => e.logs.slice(marks[i])).some((l) => /cluster_certificate_reseeded/.test(l)),
            5000 * slow, 'a replica saying it wrote its copy back');
        redis.cli('HSET', CERT, 'state', 'checked'); // so the next case sees its own write-back
    }

    it('a truncated chain', { timeout: T }, async () => {
        await badRecord('chain', chain0.slice(0, 300), /does not parse \(truncated or corrupt\)/);
    });

    it('a key that does not match its certificate', { timeout: T }, async () => {
        await badRecord('key', seal(key, `${CERT} key`, otherKeyPem), /the key in Redis does not match its certificate/);
    });

    it('a key encrypted under another encryption key', { timeout: T }, async () => {
        await badRecord('key', seal(randomBytes(32), `${CERT} key`, otherKeyPem), /cannot be decrypted with cluster\.encryption_key_file/);
    });

    it('a key stored in clear although keys are encrypted', { timeout: T }, async () => {
        await badRecord('key', otherKeyPem, /stored in clear although cluster\.encryption_key_file is set/);
    });

    it('no order was made for any of it', { timeout: T }, async () => {
        await sleep(500);
        assert.equal(pebble.orderCount(), 1);
        for (const e of replicas.edges) assert.doesNotMatch(e.stderr(), /acme_failed/);
    });
});
