// config — the users' configuration contract: every bad-config case exits 2 with one message
// naming the key (and the YAML line), env overrides and *_FILE forms, `check-config` with
// secrets redacted and the routing table of several sites, env-only start, log formats,
// --help and --version.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
    slow, freePort, tmpDir, startUpstream, startEdge, runEdge, curl, runProcess,
} from '../lib/harness.mjs';

const T = 30000 * slow;

/** Writes a config: 6 fixed lines (upstream, state_dir, listen.*) then `tail` from line 7 on. */
async function configFile(tail, dir = tmpDir()) {
    const [a, b, c] = [await freePort(), await freePort(), await freePort()];
    const text = [
        'upstream: http://127.0.0.1:9',
        `state_dir: ${path.join(dir, 'state')}`,
        'listen:',
        `  https: "127.0.0.1:${a}"`,
        `  http: "127.0.0.1:${b}"`,
        `  admin: "127.0.0.1:${c}"`,
        tail,
        '',
    ].join('\n');
    const f = path.join(dir, 'config.yaml');
    writeFileSync(f, text);
    return f;
}

/** Runs `ott-edge --config FILE` expecting a quick exit. */
async function runBad(args, env = {}) {
    const r = await runEdge(args, { env, timeoutMs: 5000 });
    assert.ok(!r.timedOut, `ott-edge did not exit on a bad config (it kept running):\n${r.stderr}`);
    return r;
}

function assertNamesKey(r, key, line) {
    assert.equal(r.code, 2, `exit code ${r.code} (want 2); stderr:\n${r.stderr}`);
    const keys = Array.isArray(key) ? key : [key];
    assert.ok(keys.some((k) => r.stderr.includes(k)), `stderr does not name ${keys.join(' or ')}:\n${r.stderr}`);
    if (line !== undefined) {
        const lines = [].concat(line).join('|');
        assert.match(r.stderr, new RegExp(`(line\\s*(${lines})\\b|:(${lines})(:\\d+)?\\b)`, 'i'), `stderr does not give line ${lines}:\n${r.stderr}`);
    }
    assert.ok(r.stderr.length < 2000, `error output too long:\n${r.stderr}`);
}

describe('bad configuration files exit 2 naming the key and the line', () => {
    const cases = [
        ['unknown top-level key', 'bogus_key: 1', 'bogus_key', 7],
        ['unknown nested key', 'proxy:\n  trusted_proxie: [10.0.0.0/8]', 'proxy.trusted_proxie', 8],
        ['wrong type (number)', 'threads: many', 'threads', 7],
        ['wrong type (bool)', 'log:\n  access: maybe', 'log.access', 8],
        ['wrong type (mapping expected)', 'shutdown: [1, 2]', 'shutdown', 7],
        ['wrong type (list expected)', 'proxy:\n  trusted_proxies:\n    a: b', 'proxy.trusted_proxies', [8, 9]],
        ['bad duration', 'shutdown:\n  delay: 5 parsecs', 'shutdown.delay', 8],
        ['negative duration', 'proxy:\n  websocket_idle_timeout: -1s', 'proxy.websocket_idle_timeout', 8],
        ['bad size', 'proxy:\n  max_body_size: 12XB', 'proxy.max_body_size', 8],
        ['bad CIDR prefix', 'proxy:\n  trusted_proxies: [10.0.0.0/8, 10.0.0.0/33]', 'proxy.trusted_proxies', 8],
        ['bad CIDR address', 'proxy:\n  trusted_proxies:\n    - 127.0.0.1/32\n    - not-an-ip/8', 'proxy.trusted_proxies', [8, 10]],
        ['bad enum', 'log:\n  format: xml', 'log.format', 8],
        ['bad log level', 'log:\n  level: loud', 'log.level', 8],
    ];
    for (const [name, tail, key, line] of cases) {
        it(name, { timeout: T }, async () => {
            const f = await configFile(tail);
            assertNamesKey(await runBad(['--config', f]), key, line);
        });
    }

    it('YAML syntax error gives the line', { timeout: T }, async () => {
        const f = await configFile('proxy:\n  block_paths: [/a, /b\nthreads: 2');
        const r = await runBad(['--config', f]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /line\s*\d+|:\d+/i, r.stderr);
        assert.ok(r.stderr.includes(f) || /yaml/i.test(r.stderr), `stderr names neither the file nor YAML:\n${r.stderr}`);
    });

    it('unreadable config file (missing, a directory)', { timeout: T }, async () => {
        const missing = path.join(tmpDir(), 'nope.yaml');
        let r = await runBad(['--config', missing]);
        assert.equal(r.code, 2, r.stderr);
        assert.ok(r.stderr.includes(missing), `stderr does not name the file:\n${r.stderr}`);
        const d = tmpDir();
        r = await runBad(['--config', d]);
        assert.equal(r.code, 2, r.stderr);
        assert.ok(r.stderr.includes(d), r.stderr);
    });

    it('unreadable tls.cert_file / tls.key_file', { timeout: T }, async () => {
        const d = tmpDir();
        const f = await configFile(`tls:\n  cert_file: ${d}/missing.pem\n  key_file: ${d}/missing.key`, d);
        const r = await runBad(['--config', f]);
        assert.equal(r.code, 2, r.stderr);
        assert.ok(/tls\.(cert|key)_file/.test(r.stderr) && r.stderr.includes('missing.'), `stderr:\n${r.stderr}`);
    });

    it('$OTT_EDGE_CONFIG naming a missing file', { timeout: T }, async () => {
        const missing = path.join(tmpDir(), 'env-nope.yaml');
        const r = await runBad([], { OTT_EDGE_CONFIG: missing });
        assert.equal(r.code, 2, r.stderr);
        assert.ok(r.stderr.includes(missing), r.stderr);
    });
});

describe('bad environment values exit 2 naming the variable or key', () => {
    const cases = [
        ['duration', { OTT_EDGE_SHUTDOWN_DELAY: 'soon' }, ['OTT_EDGE_SHUTDOWN_DELAY', 'shutdown.delay']],
        ['CIDR in a list', { OTT_EDGE_PROXY_TRUSTED_PROXIES: '10.0.0.0/8,999.1.1.1/8' }, ['OTT_EDGE_PROXY_TRUSTED_PROXIES', 'proxy.trusted_proxies']],
        ['integer', { OTT_EDGE_THREADS: 'lots' }, ['OTT_EDGE_THREADS', 'threads']],
        ['bool', { OTT_EDGE_LOG_ACCESS: 'perhaps' }, ['OTT_EDGE_LOG_ACCESS', 'log.access']],
        ['upstream URL', { OTT_EDGE_UPSTREAM: 'ftp://127.0.0.1:21' }, ['OTT_EDGE_UPSTREAM', 'upstream']],
        ['size', { OTT_EDGE_PROXY_MAX_BODY_SIZE: '10 potatoes' }, ['OTT_EDGE_PROXY_MAX_BODY_SIZE', 'proxy.max_body_size']],
        ['*_FILE naming a missing file', { OTT_EDGE_ACME_EMAIL_FILE: '/nonexistent/ott-edge-test/email' }, ['OTT_EDGE_ACME_EMAIL_FILE']],
    ];
    for (const [name, env, keys] of cases) {
        it(name, { timeout: T }, async () => {
            const f = await configFile('');
            assertNamesKey(await runBad(['--config', f], env), keys);
        });
    }

    it('*_FILE holding a bad value', { timeout: T }, async () => {
        const d = tmpDir();
        writeFileSync(path.join(d, 'delay'), 'whenever\n');
        const f = await configFile('', d);
        assertNamesKey(await runBad(['--config', f], { OTT_EDGE_SHUTDOWN_DELAY_FILE: path.join(d, 'delay') }), [
            'OTT_EDGE_SHUTDOWN_DELAY_FILE', 'OTT_EDGE_SHUTDOWN_DELAY', 'shutdown.delay',
        ]);
    });

    it('check-config also exits 2 on a bad config', { timeout: T }, async () => {
        const f = await configFile('shutdown:\n  grace: forever');
        assertNamesKey(await runBad(['check-config', '--config', f]), 'shutdown.grace', 8);
    });
});

describe('check-config', () => {
    it('prints the effective configuration with acme.eab.hmac_key redacted', { timeout: T }, async () => {
        const secret = 'c2VjcmV0LWhtYWMta2V5LWZvci10ZXN0cw-XYZ123';
        const f = await configFile(`acme:\n  enabled: false\n  eab:\n    kid: kid-123\n    hmac_key: "${secret}"\nproxy:\n  trusted_proxies: [10.0.0.0/8]`);
        const r = await runEdge(['check-config', '--config', f]);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'the HMAC key was printed');
        assert.match(r.stdout, /hmac_key/);
        assert.match(r.stdout, /kid-123/);
        assert.match(r.stdout, /10\.0\.0\.0\/8/);
        assert.match(r.stdout, /http:\/\/127\.0\.0\.1:9\b/);
        // Defaults are part of the effective configuration.
        assert.match(r.stdout, /\/api\/status\/metrics/);
        assert.match(r.stdout, /max-age=31536000/);
        assert.match(r.stdout, /websocket_idle_timeout/);
    });

    it('redacts the HMAC key given by env and by *_FILE', { timeout: T }, async () => {
        const d = tmpDir();
        const f = await configFile('acme:\n  enabled: false', d);
        for (const env of [
            { OTT_EDGE_ACME_EAB_KID: 'k1', OTT_EDGE_ACME_EAB_HMAC_KEY: 'env-secret-value-0123456789' },
            { OTT_EDGE_ACME_EAB_KID: 'k1', OTT_EDGE_ACME_EAB_HMAC_KEY_FILE: path.join(d, 'hmac') },
        ]) {
            writeFileSync(path.join(d, 'hmac'), 'file-secret-value-9876543210\n');
            const r = await runEdge(['check-config', '--config', f], { env });
            assert.equal(r.code, 0, r.stderr);
            assert.doesNotMatch(r.stdout + r.stderr, /env-secret-value|file-secret-value/);
            assert.match(r.stdout, /hmac_key/);
        }
    });

    it('env overrides the file; lists are comma-separated; *_FILE values are trimmed', { timeout: T }, async () => {
        const d = tmpDir();
        writeFileSync(path.join(d, 'email'), 'ops@example.test\n');
        const f = await configFile('acme:\n  enabled: false\n  email: file@example.test\nproxy:\n  real_ip_header: X-From-File', d);
        const r = await runEdge(['check-config', '--config', f], {
            env: {
                OTT_EDGE_UPSTREAM: 'http://127.0.0.1:2222',
                OTT_EDGE_DOMAINS: 'a.example.test,b.example.test',
                OTT_EDGE_PROXY_TRUSTED_PROXIES: '10.1.0.0/16,192.168.7.0/24',
                OTT_EDGE_ACME_EMAIL_FILE: path.join(d, 'email'),
                OTT_EDGE_PROXY_REAL_IP_HEADER: 'CF-Connecting-IP',
            },
        });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /127\.0\.0\.1:2222/);
        assert.doesNotMatch(r.stdout, /127\.0\.0\.1:9\b/, 'the file value was not overridden');
        assert.match(r.stdout, /a\.example\.test/);
        assert.match(r.stdout, /b\.example\.test/);
        assert.match(r.stdout, /10\.1\.0\.0\/16/);
        assert.match(r.stdout, /192\.168\.7\.0\/24/);
        assert.match(r.stdout, /ops@example\.test"?\s*$/m);
        assert.doesNotMatch(r.stdout, /file@example\.test/);
        assert.match(r.stdout, /CF-Connecting-IP/);
        assert.doesNotMatch(r.stdout, /X-From-File/);
    });

    it('reads $OTT_EDGE_CONFIG when --config is absent', { timeout: T }, async () => {
        const f = await configFile('proxy:\n  real_ip_header: X-Via-Env-Config');
        const r = await runEdge(['check-config'], { env: { OTT_EDGE_CONFIG: f } });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /X-Via-Env-Config/);
    });
});

/** A config with `sites`: 5 fixed lines (state_dir, listen.*), then `tail` from line 6 on. */
async function sitesConfigFile(tail, dir = tmpDir()) {
    const [a, b, c] = [await freePort(), await freePort(), await freePort()];
    const text = [
        `state_dir: ${path.join(dir, 'state')}`,
        'listen:',
        `  https: "127.0.0.1:${a}"`,
        `  http: "127.0.0.1:${b}"`,
        `  admin: "127.0.0.1:${c}"`,
        tail,
        '',
    ].join('\n');
    const f = path.join(dir, 'config.yaml');
    writeFileSync(f, text);
    return f;
}

const TWO_SITES = [
    'proxy:',
    '  websocket_idle_timeout: 1d',
    'default_site: ott',
    'sites:',
    '  - name: ott',
    '    domains: [ott.example.test, www.ott.example.test]',
    '    upstreams: [http://127.0.0.1:8080, http://127.0.0.1:8081]',
    '    balance: least_conn',
    '    proxy:',
    '      websocket_idle_timeout: 7d',
    '  - name: blog',
    '    domains: [blog.example.test]',
    '    upstream: http://127.0.0.1:2368',
    '    balance: hash',
    '    hash_key: path_segment:3',
    '    cache: {enabled: false}',
].join('\n');

describe('several sites', () => {
    it('check-config prints each site and the routing table; the output reads back the same', { timeout: T }, async () => {
        const d = tmpDir();
        const f = await sitesConfigFile(TWO_SITES, d);
        const r = await runEdge(['check-config', '--config', f], { env: { OTT_EDGE_PROXY_MAX_BODY_SIZE: '2MiB' } });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^sites:\n- name: ott\n/m);
        assert.match(r.stdout, /^- name: blog\n/m);
        assert.doesNotMatch(r.stdout, /^(domains|upstream):/m, 'top-level site keys printed with sites');
        // the routing table: one row per site with names, upstreams, balance and certificate source
        assert.match(r.stdout, /^# routing table/m);
        assert.match(r.stdout, /^#\s+ott\s+ott\.example\.test, www\.ott\.example\.test\s+http:\/\/127\.0\.0\.1:8080, http:\/\/127\.0\.0\.1:8081\s+least_conn\s+ACME$/m);
        assert.match(r.stdout, /^#\s+blog\s+blog\.example\.test\s+http:\/\/127\.0\.0\.1:2368\s+hash path_segment:3\s+ACME$/m);
        assert.match(r.stdout, /^#\s+any other name: site ott \(the default site\)$/m);
        assert.match(r.stdout, /^#\s+ott: proxy\.websocket_idle_timeout=7d$/m);
        assert.match(r.stdout, /^#\s+blog: cache\.enabled=false$/m);
        // inherited: the top-level value from the file and from the environment
        const blog = r.stdout.slice(r.stdout.indexOf('- name: blog'));
        assert.match(blog, /websocket_idle_timeout: 1d/);
        assert.match(blog, /max_body_size: 2MiB/);
        // the printed configuration is a configuration: it loads and prints the same
        writeFileSync(path.join(d, 'printed.yaml'), r.stdout);
        const again = await runEdge(['check-config', '--config', path.join(d, 'printed.yaml')]);
        assert.equal(again.code, 0, again.stderr);
        assert.equal(again.stdout.split('\n').slice(1).join('\n'), r.stdout.split('\n').slice(1).join('\n'));
    });

    it('the one-site form prints its routing table: every name goes to the one site', { timeout: T }, async () => {
        const f = await configFile('domains: [ott.example.test]');
        const r = await runEdge(['check-config', '--config', f]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^domains: \[ott\.example\.test\]$/m);
        assert.match(r.stdout, /^#\s+ott\.example\.test\s+ott\.example\.test\s+http:\/\/127\.0\.0\.1:9\s+round_robin\s+ACME$/m);
        assert.match(r.stdout, /^#\s+any other name: site ott\.example\.test \(the default site\)$/m);
    });

    const bad = [
        ['a name in two sites', `${TWO_SITES}\n  - {name: dup, domains: [WWW.ott.example.test], upstream: "http://127.0.0.1:1"}`, 'sites[2].domains', 22],
        ['a per-site value', `${TWO_SITES}\n    proxy:\n      max_body_size: 12XB`, 'sites[1].proxy.max_body_size', 23],
        ['a key that is not per site', `${TWO_SITES}\n    listen:\n      https: ":1"`, 'sites[1].listen.https', 23],
        ['two sites with one name', `${TWO_SITES}\n  - {name: blog, domains: [x.example.test], upstream: "http://127.0.0.1:1"}`, 'sites[2].name', 22],
        ['a wildcard without a certificate file', 'sites:\n  - domains: ["*.example.test"]\n    upstream: http://127.0.0.1:1', 'sites[0].domains', 7],
        ['default_site naming no site', `${TWO_SITES.replace('default_site: ott', 'default_site: nope')}`, 'default_site', 8],
        ['top-level domains with sites', `domains: [x.example.test]\n${TWO_SITES}`, 'domains', 6],
        ['a site without upstreams', 'sites:\n  - domains: [a.example.test]', 'sites[0]', 7],
        ['sites that is not a list', 'sites: {name: x}', 'sites', 6],
    ];
    for (const [name, tail, key, line] of bad) {
        it(`exit 2 naming the key and line: ${name}`, { timeout: T }, async () => {
            const f = await sitesConfigFile(tail);
            assertNamesKey(await runBad(['check-config', '--config', f]), key, line);
            assertNamesKey(await runBad(['--config', f]), key, line);
        });
    }

    it('a per-site bad value given by the environment names the variable', { timeout: T }, async () => {
        const f = await sitesConfigFile(TWO_SITES);
        assertNamesKey(await runBad(['--config', f], { OTT_EDGE_UPSTREAM: 'http://127.0.0.1:1' }), 'OTT_EDGE_UPSTREAM');
    });
});

describe('command line', () => {
    it('--help exits 0 and describes the usage', { timeout: T }, async () => {
        const r = await runEdge(['--help']);
        assert.equal(r.code, 0, r.stderr);
        const out = r.stdout + r.stderr;
        assert.match(out, /--config/);
        assert.match(out, /check-config/);
    });

    it('--version exits 0 and prints a version', { timeout: T }, async () => {
        const r = await runEdge(['--version']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout + r.stderr, /\b\d+\.\d+\.\d+\b/);
    });

    it('an unknown option fails', { timeout: T }, async () => {
        const r = await runEdge(['--no-such-option'], { timeoutMs: 5000 });
        assert.ok(!r.timedOut, 'kept running');
        assert.notEqual(r.code, 0);
    });
});

describe('running from configuration', () => {
    let up;
    before(async () => {
        up = await startUpstream();
    });
    after(async () => up?.stop());

    it('works from the environment alone (no config file)', { timeout: T }, async () => {
        const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
        const d = tmpDir();
        const edge = await startEdge({
            noConfigFile: true,
            config: { listen: { https: `127.0.0.1:${https}`, http: `127.0.0.1:${http}`, admin: `127.0.0.1:${admin}` } },
            env: {
                OTT_EDGE_LISTEN_HTTPS: `127.0.0.1:${https}`,
                OTT_EDGE_LISTEN_HTTP: `127.0.0.1:${http}`,
                OTT_EDGE_LISTEN_ADMIN: `127.0.0.1:${admin}`,
                OTT_EDGE_STATE_DIR: path.join(d, 'state'),
                OTT_EDGE_UPSTREAM: up.url,
                OTT_EDGE_SHUTDOWN_DELAY: '0s',
            },
        });
        try {
            const r = await curl(['-k', '--http2', '-w', '\n%{http_version} %{http_code}', `https://127.0.0.1:${https}/api/status`]);
            assert.equal(r.stdout, '{"status":"ok"}\n2 200');
        } finally {
            assert.deepEqual(await edge.stop(), { code: 0, signal: null });
        }
    });

    it('listen.http: "" disables the HTTP listener', { timeout: T }, async () => {
        const edge = await startEdge({ config: { upstream: up.url, listen: { http: '' } } });
        try {
            const r = await runProcess('ss', ['-Hltnp']);
            const mine = r.stdout.split('\n').filter((l) => l.includes(`pid=${edge.pid},`));
            const ports = mine.map((l) => Number(/127\.0\.0\.1:(\d+)/.exec(l)?.[1])).filter(Boolean);
            assert.deepEqual([...new Set(ports)].sort(), [edge.httpsPort, edge.adminPort].sort(), `listening: ${mine.join('\n')}`);
        } finally {
            await edge.stop();
        }
    });

    it('log.format json: every stderr line is JSON; access lines carry method, path, status, protocol', { timeout: T }, async () => {
        const edge = await startEdge({ config: { upstream: up.url, log: { format: 'json', access: true } } });
        try {
            await curl(['-k', '--http2', '-o', '/dev/null', `${edge.url}/api/status?probe=json`]);
            const line = await edge.waitForLog(/probe=json/, 5000);
            const j = JSON.parse(line);
            const s = JSON.stringify(j);
            assert.match(s, /GET/);
            assert.match(s, /\/api\/status/);
            assert.match(s, /200/);
            assert.match(s, /h2|HTTP\/2|"2(\.0)?"/i);
            assert.match(s, /127\.0\.0\.1/);
        } finally {
            await edge.stop();
        }
        for (const l of edge.appLogs().filter(Boolean)) assert.doesNotThrow(() => JSON.parse(l), `not JSON: ${l}`);
    });

    it('log.format text with log.access: an access line per request', { timeout: T }, async () => {
        const edge = await startEdge({ config: { upstream: up.url, log: { format: 'text', access: true } } });
        try {
            await curl(['-k', '--http1.1', '-o', '/dev/null', `${edge.url}/room/text-probe`]);
            const line = await edge.waitForLog(/text-probe/, 5000);
            assert.match(line, /GET/);
            assert.match(line, /\b200\b/);
            assert.doesNotThrow(() => assert.ok(!line.trim().startsWith('{')), 'text format wrote JSON');
        } finally {
            await edge.stop();
        }
    });
});
