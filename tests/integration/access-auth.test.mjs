// access-auth — access.basic_auth with an htpasswd file made by Debian's real tools: Apache's
// `htpasswd -B` ($2y$ bcrypt) and `mkpasswd` (bcrypt $2b$, SHA-512-crypt, yescrypt). Right
// and wrong passwords, unknown users, no header, malformed headers, other schemes (an app's
// Bearer token); the Authorization header removed before the upstream unless
// pass_credentials; failed attempts logged with the client address and never the password;
// wrong passwords limited per client; the file re-read on SIGHUP (and a broken file keeping
// the users in memory); check-config refusing weak hashes; HTTP/2; the 401 counter.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { slow, sleep, waitFor, startEdge, startUpstream, runEdge, tmpDir, toYaml, h2Connect, h2Request, headerValues } from '../lib/harness.mjs';
import { req, adminReq, metric, hashFor, basic } from '../lib/access.mjs';

const T = 60000 * slow;
const USERS = {
    alice: ['htpasswd-bcrypt', 'apple pie'],
    bob: ['bcrypt', 'b@nana:split'],
    carol: ['sha512crypt', 'cherry'],
    dave: ['yescrypt', 'dätteln'],
};

describe('basic authentication', () => {
    let up, edge, dir, file, unauthorized = 0;
    const write = (users) => writeFileSync(file, `# made by the test\n${Object.entries(users).map(([u, [k, p]]) => `${u}:${hashFor(k, p)}`).join('\n')}\n`);
    const get = (p, opts) => req(edge.httpsPort, p, opts);
    const as = (user, password, localAddress = '127.0.0.1') => ({ localAddress, headers: { authorization: basic(user, password) } });
    const expect401 = async (p, opts, what) => {
        const r = await get(p, opts);
        assert.equal(r.status, 401, `${what}: ${r.status}`);
        assert.equal(r.headers['www-authenticate'], 'Basic realm="default", charset="UTF-8"', what);
        assert.match(r.body, /401 Unauthorized/);
        unauthorized++;
        return r;
    };

    before(async () => {
        up = await startUpstream();
        dir = tmpDir();
        file = path.join(dir, 'htpasswd');
        write(USERS);
        edge = await startEdge({
            config: {
                upstream: up.url,
                access: { basic_auth: file },
                paths: [{ prefix: '/api/status', access: { basic_auth: '' } }], // the probes of an uptime checker
            },
        });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('lets each hash kind in with its password, and nobody without', { timeout: T }, async () => {
        for (const [user, [kind, password]] of Object.entries(USERS)) {
            const r = await get('/debug/headers', as(user, password));
            assert.equal(r.status, 200, `${user} (${kind})`);
            const seen = JSON.parse(r.body);
            assert.deepEqual(headerValues(seen, 'authorization'), [], `${user}: Authorization removed before the upstream`);
            assert.deepEqual(headerValues(seen, 'x-real-ip'), ['127.0.0.1']);
        }
        // twice: the second time from the remembered proof (no hash computed), same answer
        assert.equal((await get('/debug/headers', as('alice', 'apple pie'))).status, 200);
        const r = await expect401('/', { localAddress: '127.0.0.1' }, 'no Authorization');
        assert.match(r.headers['content-type'], /^text\/html/);
        assert.equal((await get('/api/status', { localAddress: '127.0.0.1' })).status, 200, 'a paths entry without basic_auth');
    });

    it('refuses wrong passwords and unknown users, logging the client and the user, never the password', { timeout: T }, async () => {
        await expect401('/', as('alice', 'apple pi', '127.0.0.21'), 'alice, wrong password');
        await expect401('/', as('carol', 'cherry ', '127.0.0.21'), 'carol, trailing space');
        await expect401('/', as('Alice', 'apple pie', '127.0.0.21'), 'user names are exact');
        await expect401('/', as('mallory', 'apple pie', '127.0.0.21'), 'unknown user');
        await expect401('/', as('bob', 'b@nana', '127.0.0.21'), 'bob, the password cut at its colon');
        const lines = await edge.waitForLog(/basic_auth_failed .*user=bob/);
        const failed = edge.appLogs().filter((l) => /basic_auth_failed/.test(l));
        assert.equal(failed.length, 5, failed.join('\n'));
        assert.ok(failed.every((l) => /client=127\.0\.0\.21 /.test(l) && /site=default /.test(l)), failed.join('\n'));
        assert.ok(failed.some((l) => /user=mallory /.test(l)), 'the unknown user is named');
        for (const secret of ['apple pi', 'cherry ', 'b@nana', 'YWxpY2U']) assert.ok(!edge.stderr().includes(secret), `"${secret}" not in the log`);
        assert.ok(lines);
    });

    it('answers malformed headers and other schemes with 401', { timeout: T }, async () => {
        const bad = (v, what) => expect401('/', { localAddress: '127.0.0.22', headers: { authorization: v } }, what);
        await bad('Basic !!!!', 'not base64');
        await bad('Basic YWxpY2U=', 'no colon');
        await bad(`Basic ${Buffer.from('alice:apple\npie').toString('base64')}`, 'a control character');
        await bad('Basic', 'no credentials');
        await bad('Bearer eyJhbGciOiJIUzI1NiJ9.e30.x', "an app's Bearer token");
        await bad(`Basic ${'QUFB'.repeat(300)}`, 'too long');
        const malformed = () => edge.appLogs().filter((l) => /basic_auth_failed .*client=127\.0\.0\.22 .*malformed/.test(l));
        await waitFor(() => malformed().length >= 4, 5000, 'four log lines');
        await sleep(200);
        assert.equal(malformed().length, 4, 'the malformed ones are logged; a missing or Bearer header is not');
        assert.equal((await get('/', { localAddress: '127.0.0.22', headers: { authorization: `bAsIc   ${Buffer.from('carol:cherry').toString('base64')}` } })).status, 200, 'scheme in any case');
    });

    it('checks many logins at once off the event loop', { timeout: T }, async () => {
        const t0 = Date.now();
        const all = await Promise.all(Array.from({ length: 24 }, (_, i) => get('/api/room/x', as(['bob', 'carol', 'dave'][i % 3], USERS[['bob', 'carol', 'dave'][i % 3]][1], `127.0.1.${i + 1}`))));
        assert.deepEqual(all.map((r) => r.status), Array(24).fill(200));
        // meanwhile the loop kept serving (the hashes run on the verifier thread)
        const probe = await get('/api/status', { localAddress: '127.0.0.1' });
        assert.equal(probe.status, 200);
        assert.ok(Date.now() - t0 < 20000 * slow);
    });

    it('limits wrong passwords per client: 10, then 429 with Retry-After, other clients unaffected', { timeout: T }, async () => {
        const from = '127.0.0.23';
        for (let i = 0; i < 10; i++) await expect401('/', as('dave', `guess${i}`, from), `guess ${i}`);
        const r = await get('/', as('dave', 'guess10', from));
        assert.equal(r.status, 429);
        assert.ok(Number(r.headers['retry-after']) >= 1 && Number(r.headers['retry-after']) <= 6, `Retry-After ${r.headers['retry-after']}`);
        await expect401('/', as('dave', 'guess11', '127.0.0.24'), 'another client still gets its tries');
        assert.equal((await get('/', as('dave', USERS.dave[1], from))).status, 200, 'a password proven before needs no hash: it passes');
    });

    it('keeps Authorization for the upstream with pass_credentials: true, on a paths entry', { timeout: T }, async () => {
        const e2 = await startEdge({ config: { upstream: up.url, paths: [{ prefix: '/debug', access: { basic_auth: file, pass_credentials: true } }] } });
        try {
            const r = await req(e2.httpsPort, '/debug/headers', as('carol', 'cherry'));
            assert.equal(r.status, 200);
            assert.deepEqual(headerValues(JSON.parse(r.body), 'authorization'), [basic('carol', 'cherry')]);
            assert.equal((await req(e2.httpsPort, '/api/room/x', { localAddress: '127.0.0.1' })).status, 200, 'outside the prefix: no password');
            assert.equal((await req(e2.httpsPort, '/DEBUG/headers', { localAddress: '127.0.0.1' })).status, 401, 'inside it, any case');
        } finally {
            await e2.stop();
        }
    });

    it('works over HTTP/2', { timeout: T }, async () => {
        const s = await h2Connect(edge.httpsPort);
        try {
            assert.equal((await h2Request(s, '/', {})).status, 401);
            unauthorized++;
            const r = await h2Request(s, '/debug/headers', { headers: { authorization: basic('bob', USERS.bob[1]) } });
            assert.equal(r.status, 200);
            assert.deepEqual(headerValues(JSON.parse(r.body), 'authorization'), []);
        } finally {
            s.close();
        }
    });

    it('re-reads the file on SIGHUP; a broken file keeps the users in memory', { timeout: T }, async () => {
        write({ ...USERS, bob: ['yescrypt', 'new banana'], erin: ['htpasswd-bcrypt', 'elderberry'] });
        edge.kill('SIGHUP');
        await edge.waitForLog(/access_reloaded .*users=5/);
        await expect401('/', as('bob', USERS.bob[1], '127.0.0.30'), 'bob, old password (also no longer remembered)');
        assert.equal((await get('/', as('bob', 'new banana', '127.0.0.30'))).status, 200, 'bob, new password');
        assert.equal((await get('/', as('erin', 'elderberry', '127.0.0.30'))).status, 200, 'erin, added');
        writeFileSync(file, `alice:${hashFor('apr1', 'apple pie')}\n`);
        edge.kill('SIGHUP');
        // the whole reload is refused (nothing changes), naming the file's line
        const l = await edge.waitForLog(/reload_failed/);
        assert.match(l, /line 1 \(user \\?"alice\\?"\): not a hash libxcrypt knows/);
        assert.equal((await get('/', as('erin', 'elderberry', '127.0.0.30'))).status, 200, 'the users read before stay');
    });

    it('counts the 401s per site in /metrics', { timeout: T }, async () => {
        const m = await adminReq(edge.adminPort, '/metrics');
        assert.equal(metric(m.body, 'ott_edge_access_unauthorized_total', { site: 'default' }), unauthorized);
        assert.equal(metric(m.body, 'ott_edge_access_limited_total', { site: 'default', limit: 'auth_failures' }), 1);
    });

    it('refuses weak hashes and unreadable files at start (exit 2, naming the key)', { timeout: T }, async () => {
        write(USERS);
        const weak = path.join(dir, 'weak');
        writeFileSync(weak, `x:${hashFor('apr1', 'y')}\n`);
        const cfg = (o) => {
            const f = path.join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
            writeFileSync(f, toYaml({ upstream: up.url, ...o }));
            return f;
        };
        let r = await runEdge(['check-config', '--config', cfg({ paths: [{ prefix: '/a', access: { basic_auth: weak } }] })]);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /^config: paths\[0\]\.access\.basic_auth: ".*weak": line 1 \(user "x"\): not a hash libxcrypt knows .*htpasswd -B/m);
        r = await runEdge(['check-config', '--config', cfg({ access: { basic_auth: path.join(dir, 'none') } })]);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /^config: access\.basic_auth: cannot read ".*none": No such file or directory/m);
        r = await runEdge(['check-config', '--config', cfg({ access: { basic_auth: file } })]);
        assert.equal(r.code, 0, r.stderr);
    });
});
