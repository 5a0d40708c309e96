// sites-certs-dns01 — DNS-01 per site: two sites, each with a wildcard name, get their own
// certificate from a real CA (pebble) through real DNS on loopback (knotd authoritative for
// both zones, RFC 2136 updates signed with TSIG; unbound as the CA's resolver), their two
// jobs writing and removing TXT records in parallel. Each name is served its own site's
// certificate (its SANs exactly that site's names, the chain verified against pebble's
// root); no record is left in either zone; /status.json lists each site with its own ACME
// state, and /metrics (promtool-clean when promtool is installed) has each site's families.
//
// Ports: pebble slot 22 (ACME 14220, ott-edge on 5644/5645).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startEdge, startUpstream, adminGet, runProcess, slow, tmpDir, waitFor } from '../lib/harness.mjs';
import { startPebble, verifiedPeer } from '../lib/pebble.mjs';
import { startDns, dnsToolsMissing } from '../lib/dns.mjs';

const T = 60000 * slow;
const OTT = ['ott.test', '*.ott.test'];
const BLOG = ['blog.test', '*.blog.test'];
const PROMTOOL = '/usr/bin/promtool';

const sans = (peer) => peer.subjectaltname.split(', ').map((s) => s.replace(/^DNS:/, '')).sort();
const installed = (edge, site) => edge.logs.filter((l) => /acme_certificate_installed /.test(l) && l.includes(` site=${site}`)).length;

describe('DNS-01 per site: wildcard certificates for two sites at once', { skip: dnsToolsMissing() || false }, () => {
    let dns, pebble, up, root;
    before(async () => {
        dns = await startDns({ zones: ['ott.test', 'blog.test'] });
        pebble = await startPebble({ slot: 22, dnsServer: dns.recursor });
        up = await startUpstream();
        root = await pebble.root();
    });
    after(async () => {
        await pebble?.stop();
        await dns?.stop();
        await up?.stop();
    });

    it('each site gets its own wildcard certificate over DNS-01; SNI picks it; no record is left', { timeout: T }, async () => {
        const edge = await startEdge({
            config: {
                listen: pebble.edgeListen(),
                acme: pebble.edgeAcmeConfig({
                    challenges: ['dns-01'],
                    dns: {
                        provider: 'rfc2136',
                        rfc2136: { server: dns.server, key_name: dns.key.name, key_algorithm: dns.key.algorithm },
                        resolvers: [dns.server],
                    },
                    dns_propagation_timeout: '20s',
                }),
                state_dir: `${tmpDir('ott-edge-sites-dns01-')}/state`,
                default_site: 'ott',
                sites: [
                    { name: 'ott', domains: OTT, upstream: up.url },
                    { name: 'blog', domains: BLOG, upstream: up.url },
                ],
            },
            env: { OTT_EDGE_ACME_DNS_RFC2136_KEY_SECRET: dns.key.secret },
        });
        try {
            await waitFor(() => installed(edge, 'ott') >= 1 && installed(edge, 'blog') >= 1, 40000 * slow, 'both certificates');
            const logs = edge.appLogs();
            for (const zone of ['ott.test', 'blog.test']) {
                const re = new RegExp(`acme_dns_present name=${zone.replace(/\./g, '\\.')} fqdn=_acme-challenge\\.${zone.replace(/\./g, '\\.')}\\. zone=${zone.replace(/\./g, '\\.')}\\. provider=rfc2136`);
                assert.equal(logs.filter((l) => re.test(l)).length, 2, `two TXT values (the name and its wildcard) in ${zone}:\n${edge.stderr()}`);
                assert.deepEqual(await dns.txt(`_acme-challenge.${zone}`), [], `no record left in ${zone}`);
            }
            assert.equal(pebble.orderCount(), 2, 'one order per site');

            for (const [names, host] of [[OTT, 'ott.test'], [OTT, 'room-1.ott.test'], [BLOG, 'blog.test'], [BLOG, 'post.blog.test']]) {
                const peer = await verifiedPeer(pebble.ports.tlsPort, host, root);
                assert.deepEqual(sans(peer), [...names].sort(), `${host}: its own site's names only`);
            }
            await waitFor(async () => (await adminGet(edge, '/readyz')).status === 200, 10000, '/readyz 200');

            const st = JSON.parse((await adminGet(edge, '/status.json')).body);
            assert.deepEqual(st.sites.map((s) => s.name), ['ott', 'blog']);
            for (const [i, names] of [OTT, BLOG].entries()) {
                const c = st.sites[i].certificate;
                assert.equal(c.source, 'acme');
                assert.deepEqual([...c.names].sort(), [...names].sort());
                assert.equal(c.acme.orders_ok, 1);
                assert.equal(c.acme.consecutive_failures, 0);
                assert.ok(c.acme.next_attempt > st.now, `${st.sites[i].name}: renewal scheduled`);
            }

            const m = (await adminGet(edge, '/metrics')).body;
            for (const site of ['ott', 'blog']) {
                assert.match(m, new RegExp(`ott_edge_acme_site_renewals_total\\{site="${site}",result="ok"\\} 1\\n`));
                assert.match(m, new RegExp(`ott_edge_site_certificate_self_signed\\{site="${site}"\\} 0\\n`));
            }
            assert.match(m, /ott_edge_certificate_expiry_seconds\{name="\*\.blog\.test"\} \d+/);
            if (existsSync(PROMTOOL)) {
                const r = await runProcess(PROMTOOL, ['check', 'metrics'], { input: m, timeoutMs: 15000 * slow });
                assert.ok(r.code === 0 && `${r.stdout}${r.stderr}`.trim() === '', `promtool:\n${r.stdout}${r.stderr}`);
            }
        } finally {
            await edge.stop();
        }
    });
});
