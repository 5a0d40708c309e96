// sites-certs — one ACME certificate per site from a real ACME server (pebble, real
// validation with the default challenges: TLS-ALPN-01 on the HTTPS port, routed by SNI among
// the sites' certificates): each name gets its own site's certificate, whose SANs are exactly that site's
// domains (verified against pebble's root over real handshakes), an unknown name gets the
// default site's; /readyz waits for every site; metrics per site; files per site under
// state_dir/sites/<name>/ with one shared account; a restart with the state_dir serves both
// certificates and makes no order; a one-site state_dir moved to `sites` keeps its certificate
// (no new order) while the new site gets its own. /status.json lists each site with its own
// certificate and ACME state; /metrics passes promtool (when installed) with several sites.
//
// Ports: pebble slot 20 (ACME 14200, ott-edge on 5640/5641).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { startEdge, startUpstream, adminGet, runProcess, slow, tmpDir, waitFor, peerCert, sleep } from '../lib/harness.mjs';
import { startPebble, verifiedPeer } from '../lib/pebble.mjs';

const T = 60000 * slow;
const OTT = ['ott.sites.test', 'www.ott.sites.test'];
const BLOG = ['blog.sites.test'];
const PROMTOOL = '/usr/bin/promtool';

const sans = (peer) => peer.subjectaltname.split(', ').map((s) => s.replace(/^DNS:/, '')).sort();
const installed = (edge, site) => edge.logs.filter((l) => /acme_certificate_installed /.test(l) && l.includes(` site=${site}`)).length;

describe('one ACME certificate per site', () => {
    let pebble, up, stateDir, root;
    const serials = {};
    before(async () => {
        pebble = await startPebble({ slot: 20 });
        up = await startUpstream();
        stateDir = path.join(tmpDir('ott-edge-sites-'), 'state');
    });
    after(async () => {
        await pebble?.stop();
        await up?.stop();
    });

    const sitesConfig = (dir) => ({
        listen: pebble.edgeListen(),
        acme: pebble.edgeAcmeConfig(),
        state_dir: dir,
        default_site: 'blog',
        sites: [
            { name: 'ott', domains: OTT, upstream: up.url },
            { name: 'blog', domains: BLOG, upstream: up.url },
        ],
    });

    it('each site gets its own certificate for its names; SNI picks it; an unknown name gets the default site\'s', { timeout: T }, async () => {
        const edge = await startEdge({ config: sitesConfig(stateDir) });
        try {
            await waitFor(() => installed(edge, 'ott') >= 1 && installed(edge, 'blog') >= 1, 30000, 'both certificates');
            assert.match(edge.stderr(), /acme_authorization_valid name=www\.ott\.sites\.test type=tls-alpn-01/);
            assert.match(edge.stderr(), /acme_authorization_valid name=blog\.sites\.test type=tls-alpn-01/);
            assert.equal(pebble.orderCount(), 2, 'one order per site');
            root = await pebble.root();
            for (const name of OTT) {
                const peer = await verifiedPeer(pebble.ports.tlsPort, name, root);
                assert.deepEqual(sans(peer), [...OTT].sort(), `${name}: the ott site's names only`);
                serials.ott = peer.serialNumber;
            }
            const blog = await verifiedPeer(pebble.ports.tlsPort, 'blog.sites.test', root);
            assert.deepEqual(sans(blog), BLOG);
            serials.blog = blog.serialNumber;
            assert.notEqual(serials.ott, serials.blog);
            assert.equal((await peerCert(pebble.ports.tlsPort, { servername: 'unknown.sites.test' })).serialNumber, serials.blog, 'unknown name: the default site\'s');
            assert.equal((await peerCert(pebble.ports.tlsPort, {})).serialNumber, serials.blog, 'no SNI: the default site\'s');

            await waitFor(async () => (await adminGet(edge, '/readyz')).status === 200, 10000, '/readyz 200');
            const m = (await adminGet(edge, '/metrics')).body;
            for (const site of ['ott', 'blog']) {
                assert.match(m, new RegExp(`ott_edge_acme_site_renewals_total\\{site="${site}",result="ok"\\} 1\\n`));
                assert.match(m, new RegExp(`ott_edge_acme_site_consecutive_failures\\{site="${site}"\\} 0\\n`));
                assert.match(m, new RegExp(`ott_edge_site_certificate_self_signed\\{site="${site}"\\} 0\\n`));
                assert.match(m, new RegExp(`ott_edge_site_certificate_expiry_seconds\\{site="${site}"\\} 3[0-9]{3}\\n`));
            }
            assert.match(m, /ott_edge_acme_renewals_total\{result="ok"\} 2\n/);
            const families = m.match(/^# TYPE \S+/gm);
            assert.equal(new Set(families).size, families.length, 'a metric family is described twice');
            for (const n of [...OTT, ...BLOG]) assert.match(m, new RegExp(`ott_edge_certificate_expiry_seconds\\{name="${n.replace(/\./g, '\\.')}"\\} \\d+`));
            if (existsSync(PROMTOOL)) {
                const r = await runProcess(PROMTOOL, ['check', 'metrics'], { input: m, timeoutMs: 15000 * slow });
                assert.ok(r.code === 0 && `${r.stdout}${r.stderr}`.trim() === '', `promtool:\n${r.stdout}${r.stderr}\n${m}`);
            }

            // the status page: each site with its own certificate and ACME state
            const st = JSON.parse((await adminGet(edge, '/status.json')).body);
            assert.deepEqual(st.sites.map((s) => [s.name, s.domains, s.certificate.source, s.certificate.serial.toLowerCase().replace(/^0+/, '')]), [
                ['ott', OTT, 'acme', serials.ott.toLowerCase().replace(/^0+/, '')],
                ['blog', BLOG, 'acme', serials.blog.toLowerCase().replace(/^0+/, '')],
            ]);
            for (const s of st.sites) {
                assert.equal(s.certificate.acme.orders_ok, 1, s.name);
                assert.equal(s.certificate.acme.last_problem, null, s.name);
            }
        } finally {
            await edge.stop();
        }
        // storage: one directory per site, one account for all
        for (const site of ['ott', 'blog']) {
            assert.ok(readFileSync(path.join(stateDir, 'sites', site, 'cert.pem'), 'utf8').includes('BEGIN CERTIFICATE'));
            assert.equal(statSync(path.join(stateDir, 'sites', site, 'cert.key')).mode & 0o777, 0o600);
        }
        assert.ok(!existsSync(path.join(stateDir, 'cert.pem')), 'no one-site certificate in a sites state_dir');
        assert.equal(statSync(path.join(stateDir, 'account.key')).mode & 0o777, 0o600);
        const accounts = new Set(edge.logs.filter((l) => /acme_account url=/.test(l)).map((l) => /url=(\S+)/.exec(l)[1]));
        assert.ok(accounts.size <= 1, `one account for all sites: ${[...accounts]}`);
        assert.ok(readFileSync(path.join(stateDir, 'account.json'), 'utf8').includes([...accounts][0] || 'my-account'));
    });

    it('a restart with the state_dir serves both stored certificates at once and makes no new order', { timeout: T }, async () => {
        const before = pebble.orderCount();
        const edge = await startEdge({ config: sitesConfig(stateDir) });
        try {
            await edge.waitForLog(/acme_stored_certificate .*site=ott/, 5000);
            await edge.waitForLog(/acme_stored_certificate .*site=blog/, 5000);
            assert.equal((await verifiedPeer(pebble.ports.tlsPort, 'www.ott.sites.test', root)).serialNumber, serials.ott);
            assert.equal((await verifiedPeer(pebble.ports.tlsPort, 'blog.sites.test', root)).serialNumber, serials.blog);
            await waitFor(() => edge.logs.filter((l) => /acme_next_attempt /.test(l)).length >= 2, 5000, 'both scheduled');
            await sleep(1000);
            assert.equal(pebble.orderCount(), before, 'a new order was made although both stored certificates are good');
            assert.doesNotMatch(edge.stderr(), /acme_order_start/);
            await waitFor(async () => (await adminGet(edge, '/readyz')).status === 200, 5000, '/readyz 200');
        } finally {
            await edge.stop();
        }
    });

    it('a one-site state_dir moved to sites keeps its certificate (no new order); the new site gets its own', { timeout: T }, async () => {
        const dir = path.join(tmpDir('ott-edge-upgrade-'), 'state');
        // the one-site form, as every earlier ott-edge wrote it: state_dir/cert.pem
        let edge = await startEdge({
            config: { domains: OTT, upstream: up.url, listen: pebble.edgeListen(), acme: pebble.edgeAcmeConfig({ challenges: ['http-01'] }), state_dir: dir },
        });
        let old;
        try {
            await edge.waitForLog(/acme_certificate_installed/, 20000);
            old = (await verifiedPeer(pebble.ports.tlsPort, 'ott.sites.test', root)).serialNumber;
        } finally {
            await edge.stop();
        }
        assert.ok(existsSync(path.join(dir, 'cert.pem')), 'the one-site layout');
        const before = pebble.orderCount();
        edge = await startEdge({ config: sitesConfig(dir) });
        try {
            await edge.waitForLog(/acme_stored_certificate_adopted .*site=ott/, 5000);
            await waitFor(() => installed(edge, 'blog') >= 1, 20000, 'the new site\'s certificate');
            assert.equal((await verifiedPeer(pebble.ports.tlsPort, 'ott.sites.test', root)).serialNumber, old, 'the old certificate is served');
            assert.deepEqual(sans(await verifiedPeer(pebble.ports.tlsPort, 'blog.sites.test', root)), BLOG);
            await sleep(500);
            assert.equal(pebble.orderCount(), before + 1, 'only the new site ordered');
            assert.doesNotMatch(edge.stderr(), /acme_order_start.*site=ott/);
        } finally {
            await edge.stop();
        }
        assert.ok(existsSync(path.join(dir, 'sites', 'ott', 'cert.pem')));
    });
});
