// acme-dns01 — DNS-01 against a real CA and real DNS on loopback: Debian's knotd is
// authoritative for ott.test and delegated.test and takes RFC 2136 updates signed with a
// TSIG key; unbound is the CA's recursive resolver; pebble validates through it
// (-dnsserver), so a certificate is issued only if the TXT records ott-edge wrote are really
// there. Shown: ott.test + *.ott.test through rfc2136 (secret given as _FILE), the chain
// verifying against pebble's root for the apex and any name under it, the records gone
// afterwards; the same through the exec provider with a knsupdate hook (lego's interface);
// a CNAME on _acme-challenge delegating validation to a second zone.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startEdge, slow, tmpDir } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';
import { startDns } from '../lib/dns.mjs';

const T = 60000 * slow;
const count = (logs, re) => logs.filter((l) => re.test(l)).length;

describe('ACME DNS-01 (rfc2136 and exec providers, wildcard, CNAME delegation)', () => {
    let dns, pebble, root;
    before(async () => {
        dns = await startDns({
            zones: ['ott.test', 'delegated.test'],
            records: { 'ott.test': ['_acme-challenge.sub CNAME _acme-challenge.sub.delegated.test.'] },
        });
        pebble = await startPebble({ slot: 11, dnsServer: dns.recursor });
        root = await pebble.root();
    });
    after(async () => {
        await pebble?.stop();
        await dns?.stop();
    });

    function rfc2136Config(extra = {}) {
        return {
            challenges: ['dns-01'],
            dns: {
                provider: 'rfc2136',
                rfc2136: { server: dns.server, key_name: dns.key.name, key_algorithm: dns.key.algorithm },
                resolvers: [dns.server],
            },
            dns_propagation_timeout: '20s',
            ...extra,
        };
    }

    it('rfc2136: a certificate for ott.test and *.ott.test; the chain verifies; no record is left', { timeout: T }, async () => {
        const dir = tmpDir();
        const secretFile = path.join(dir, 'tsig.secret');
        writeFileSync(secretFile, `${dns.key.secret}\n`, { mode: 0o600 });
        const edge = await startEdge({
            config: edgeConfigFor(pebble, { domains: ['ott.test', '*.ott.test'], acme: rfc2136Config() }),
            env: { OTT_EDGE_ACME_DNS_RFC2136_KEY_SECRET_FILE: secretFile },
        });
        try {
            await edge.waitForLog(/acme_certificate_installed/, 30000 * slow);
            const logs = edge.appLogs();
            // one TXT value per authorization (the name and its wildcard share _acme-challenge.ott.test)
            assert.equal(count(logs, /acme_dns_present name=ott\.test fqdn=_acme-challenge\.ott\.test\. zone=ott\.test\. provider=rfc2136/), 2, edge.stderr());
            assert.match(edge.stderr(), /acme_dns_propagated records=2 waited_ms=\d+ rounds=\d+ checked_at=acme\.dns\.resolvers/);
            assert.equal(count(logs, /acme_authorization_valid name=ott\.test type=dns-01/), 2, edge.stderr());
            assert.equal(count(logs, /acme_dns_cleanup name=ott\.test fqdn=_acme-challenge\.ott\.test\./), 2, edge.stderr());
            // the CA looked the records up itself: ott-edge asks knot directly, only pebble asks unbound
            assert.ok(dns.recursorQueries('_acme-challenge.ott.test') >= 2, `pebble's TXT queries:\n${dns.logs()}`);

            // the served chain verifies against pebble's root for the apex and for names under the wildcard
            const apex = await verifiedPeer(pebble.ports.tlsPort, 'ott.test', root);
            assert.match(apex.subjectaltname, /DNS:ott\.test/);
            assert.match(apex.subjectaltname, /DNS:\*\.ott\.test/);
            const www = await verifiedPeer(pebble.ports.tlsPort, 'www.ott.test', root);
            assert.equal(www.serialNumber, apex.serialNumber);
            await verifiedPeer(pebble.ports.tlsPort, 'room-42.ott.test', root);
            await assert.rejects(verifiedPeer(pebble.ports.tlsPort, 'a.b.ott.test', root), /altnames|Hostname/i,
                'a wildcard covers one label only');

            // nothing left behind in the zone
            assert.deepEqual(await dns.txt('_acme-challenge.ott.test'), []);
            // and the secret never reached the logs
            assert.ok(!edge.stderr().includes(dns.key.secret));
        } finally {
            await edge.stop();
        }
    });

    it('exec: the same through a hook that calls knsupdate (present/cleanup FQDN VALUE)', { timeout: T }, async () => {
        const dir = tmpDir();
        const hook = dns.knsupdateScript(path.join(dir, 'dns-hook.sh'), { zone: 'ott.test' });
        const edge = await startEdge({
            config: edgeConfigFor(pebble, {
                domains: ['ott.test', '*.ott.test'],
                acme: {
                    challenges: ['dns-01'],
                    dns: { provider: 'exec', exec: { command: hook }, resolvers: [dns.server] },
                    dns_propagation_timeout: '20s',
                },
            }),
        });
        try {
            await edge.waitForLog(/acme_certificate_installed/, 30000 * slow);
            const calls = readFileSync(`${hook}.calls`, 'utf8').trim().split('\n');
            assert.equal(calls.length, 4, calls.join('\n'));
            const present = calls.filter((c) => c.startsWith('present _acme-challenge.ott.test. '));
            const cleanup = calls.filter((c) => c.startsWith('cleanup _acme-challenge.ott.test. '));
            assert.equal(present.length, 2);
            assert.deepEqual(cleanup.map((c) => c.split(' ')[2]).sort(), present.map((c) => c.split(' ')[2]).sort(),
                'each value written is removed');
            for (const c of present) assert.match(c.split(' ')[2], /^[A-Za-z0-9_-]{43}$/, 'base64url SHA-256 digest');
            // the hook's output is logged, its exit status honoured
            assert.match(edge.stderr(), /acme_dns_exec_output action=present line="knsupdate add _acme-challenge\.ott\.test\.: ok"/);
            assert.equal(count(edge.appLogs(), /acme_dns_exec action=(present|cleanup) .*status=0/), 4);
            const leaf = await verifiedPeer(pebble.ports.tlsPort, 'chat.ott.test', root);
            assert.match(leaf.subjectaltname, /DNS:\*\.ott\.test/);
            assert.deepEqual(await dns.txt('_acme-challenge.ott.test'), []);
        } finally {
            await edge.stop();
        }
    });

    it('a CNAME on _acme-challenge delegates validation to another zone', { timeout: T }, async () => {
        // lookups and the propagation check go through the recursive resolver here
        const edge = await startEdge({
            config: edgeConfigFor(pebble, {
                domains: ['sub.ott.test', '*.sub.ott.test'],
                acme: rfc2136Config({ dns: { ...rfc2136Config().dns, resolvers: [dns.recursor] } }),
            }),
            env: { OTT_EDGE_ACME_DNS_RFC2136_KEY_SECRET: dns.key.secret },
        });
        try {
            await edge.waitForLog(/acme_certificate_installed/, 30000 * slow);
            assert.match(edge.stderr(), /acme_dns_cname from=_acme-challenge\.sub\.ott\.test\. to=_acme-challenge\.sub\.delegated\.test\./);
            assert.equal(count(edge.appLogs(), /acme_dns_present name=sub\.ott\.test fqdn=_acme-challenge\.sub\.delegated\.test\. zone=delegated\.test\./), 2,
                edge.stderr());
            const leaf = await verifiedPeer(pebble.ports.tlsPort, 'x.sub.ott.test', root);
            assert.match(leaf.subjectaltname, /DNS:\*\.sub\.ott\.test/);
            assert.deepEqual(await dns.txt('_acme-challenge.sub.delegated.test'), []);
            assert.deepEqual(await dns.txtViaRecursor('_acme-challenge.sub.ott.test'), []);
        } finally {
            await edge.stop();
        }
    });
});
