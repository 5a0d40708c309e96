// acme-dns01-config — the DNS-01 part of the users' configuration contract, through
// `ott-edge check-config`: wildcard names only with DNS-01, a provider for dns-01 and the
// keys each provider needs, TSIG algorithm and secret syntax, resolver addresses; every
// mistake exits 2 with one line naming the key (and the YAML line); the _FILE form of the
// TSIG secret works and the secret is redacted.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runEdge, tmpDir, slow } from '../lib/harness.mjs';

const T = 20000 * slow;

/** check-config on a YAML file whose line 1 is `domains:` and the rest `tail`. */
async function check(domains, tail, env = {}) {
    const dir = tmpDir();
    const f = path.join(dir, 'config.yaml');
    writeFileSync(f, [`domains: ${JSON.stringify(domains)}`, `state_dir: ${dir}`, tail, ''].join('\n'));
    return runEdge(['check-config', '--config', f], { env, timeoutMs: 5000 });
}

const RFC2136 = 'acme:\n  challenges: [dns-01]\n  dns:\n    provider: rfc2136\n    rfc2136:\n      server: ns1.example.com:53';

describe('DNS-01 configuration', () => {
    const bad = [
        ['a wildcard without DNS-01', ['example.com', '*.example.com'], '', 'domains',
            /wildcard name "\*\.example\.com" needs tls\.cert_file and tls\.key_file, or DNS-01 \(dns-01 in acme\.challenges and an acme\.dns\.provider\)/],
        ['a wildcard with only HTTP-01', ['*.example.com'], 'acme:\n  challenges: [http-01]', 'domains', /wildcard name .* needs tls\.cert_file .*, or DNS-01/],
        ['a wildcard in the middle', ['a.*.example.com'], RFC2136, 'domains', /invalid wildcard name "a\.\*\.example\.com"/],
        ['a wildcard on a top-level name', ['*.com'], RFC2136, 'domains', /invalid wildcard name/],
        ['dns-01 without a provider', ['example.com'], 'acme:\n  challenges: [dns-01]', 'acme.challenges',
            /dns-01 needs acme.dns.provider \(rfc2136 or exec\)/],
        ['a provider without dns-01', ['example.com'], 'acme:\n  dns:\n    provider: exec\n    exec: {command: /bin/true}',
            'acme.dns.provider', /acme.dns.provider is set but acme.challenges does not list dns-01/],
        ['an unknown provider', ['example.com'], 'acme:\n  challenges: [dns-01]\n  dns:\n    provider: cloudflare', 'acme.dns.provider',
            /invalid value "cloudflare" \(use none, rfc2136 or exec\)/],
        ['rfc2136 without a server', ['example.com'], 'acme:\n  challenges: [dns-01]\n  dns:\n    provider: rfc2136',
            'acme.dns.provider', /acme.dns.provider rfc2136 needs acme.dns.rfc2136.server/],
        ['exec without a command', ['example.com'], 'acme:\n  challenges: [dns-01]\n  dns:\n    provider: exec', 'acme.dns.provider',
            /acme.dns.provider exec needs acme.dns.exec.command/],
        ['a key name without its secret', ['example.com'], `${RFC2136}\n      key_name: acme-key`, 'acme.dns.rfc2136.key_name',
            /acme.dns.rfc2136.key_name and acme.dns.rfc2136.key_secret must be given together/],
        ['a secret that is not base64', ['example.com'], `${RFC2136}\n      key_name: acme-key\n      key_secret: "not base64!"`,
            'acme.dns.rfc2136.key_secret', /not base64/],
        ['an unsupported algorithm', ['example.com'], `${RFC2136}\n      key_algorithm: hmac-md5`, 'acme.dns.rfc2136.key_algorithm',
            /invalid value "hmac-md5" \(use hmac-sha256 or hmac-sha512\)/],
        ['a bad server', ['example.com'], 'acme:\n  challenges: [dns-01]\n  dns:\n    provider: rfc2136\n    rfc2136:\n      server: "ns1:99999"',
            'acme.dns.rfc2136.server', /invalid DNS server "ns1:99999"/],
        ['a resolver that is a name', ['example.com'], `${RFC2136}\n    resolvers: [dns.example.com]`, 'acme.dns.resolvers',
            /invalid resolver "dns\.example\.com"/],
        ['a zero propagation timeout', ['example.com'], `${RFC2136}\n  dns_propagation_timeout: 0s`, 'acme.dns_propagation_timeout',
            /out of range/],
    ];
    for (const [what, domains, tail, key, re] of bad) {
        it(`refuses ${what}`, { timeout: T }, async () => {
            const r = await check(domains, tail);
            assert.equal(r.code, 2, `exit ${r.code}:\n${r.stderr}`);
            assert.ok(r.stderr.includes(key), `does not name ${key}:\n${r.stderr}`);
            assert.match(r.stderr, re);
            assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        });
    }

    it('accepts a wildcard with DNS-01, takes the TSIG secret from a _FILE and redacts it', { timeout: T }, async () => {
        const dir = tmpDir();
        const secretFile = path.join(dir, 'secret');
        const secret = 'c2VjcmV0LWZvci1jaGVjay1jb25maWctMDEyMzQ1Njc4OWFiY2RlZg==';
        writeFileSync(secretFile, `${secret}\n`);
        const r = await check(['example.com', '*.example.com'],
            `${RFC2136}\n      key_name: acme-key\n      key_algorithm: hmac-sha512\n    resolvers: ["192.0.2.53", "[2001:db8::53]:5353"]\n  dns_propagation_timeout: 5m`,
            { OTT_EDGE_ACME_DNS_RFC2136_KEY_SECRET_FILE: secretFile });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /domains: \[example\.com, '\*\.example\.com'\]/);
        assert.match(r.stdout, /provider: rfc2136/);
        assert.match(r.stdout, /key_algorithm: hmac-sha512/);
        assert.match(r.stdout, /key_secret: <redacted>/);
        assert.match(r.stdout, /dns_propagation_timeout: 5m/);
        assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret));
    });

    it('takes every DNS-01 key from the environment', { timeout: T }, async () => {
        const r = await check(['*.example.com'], '', {
            OTT_EDGE_ACME_CHALLENGES: 'dns-01',
            OTT_EDGE_ACME_DNS_PROVIDER: 'exec',
            OTT_EDGE_ACME_DNS_EXEC_COMMAND: '/usr/local/bin/dns-hook',
            OTT_EDGE_ACME_DNS_RESOLVERS: '192.0.2.53,198.51.100.53:53',
            OTT_EDGE_ACME_DNS_PROPAGATION_TIMEOUT: '90s',
        });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /command: \/usr\/local\/bin\/dns-hook/);
        assert.match(r.stdout, /resolvers: \[192\.0\.2\.53, '198\.51\.100\.53:53'\]/);
        assert.match(r.stdout, /dns_propagation_timeout: 1m30s/);
    });
});
