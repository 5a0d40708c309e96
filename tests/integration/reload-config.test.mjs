// reload-config — SIGHUP (and `ott-edge reload`, POST /reload) applies the whole
// configuration while a counted HTTP/1.1 + HTTP/2 load and 200 WebSockets run, with zero
// failed requests and every WebSocket still echoing at the end:
//   1. a second site added to the file: served at once (self-signed until ACME), then its
//      own certificate ordered from pebble (real TLS-ALPN-01 validation) and served;
//   2. an upstream server added to a pool (traffic reaches it), then the first one removed
//      (traffic leaves it);
//   3. a block_paths rule added (404 at once on the new path), an access rule added (403);
//   4. an invalid file: refused with the key and line in the log and in `ott-edge reload`'s
//      answer (exit 1), the configuration in service unchanged, a failed reload counted;
//   5. a key that needs an upgrade (threads): logged as such, the rest applied.
// /metrics and /status.json show the generation and the reload results throughout.
//
// Ports: pebble slot 14 (ACME 14140, ott-edge on 5628/5629).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { startEdge, startUpstream, adminGet, runEdge, httpsGet, openWs, slow, toYaml, waitFor } from '../lib/harness.mjs';
import { startPebble, verifiedPeer } from '../lib/pebble.mjs';
import { startLoad, openWebSockets } from '../lib/load.mjs';

const T = 180000 * slow;
const OTT = 'ott.reload.test';
const BLOG = 'blog.reload.test';

describe('configuration reload under load', () => {
    let pebble, upA, upB, edge, load, wss;
    before(async () => {
        pebble = await startPebble({ slot: 14 });
        upA = await startUpstream({ env: { OTT_UPSTREAM_NAME: 'A', OTT_UPSTREAM_PING_MS: '0' } });
        upB = await startUpstream({ env: { OTT_UPSTREAM_NAME: 'B', OTT_UPSTREAM_PING_MS: '0' } });
    });
    after(async () => {
        await load?.stop();
        wss?.closeAll();
        await edge?.stop();
        await pebble?.stop();
        await upA?.stop();
        await upB?.stop();
    });

    let cfg;
    const write = (c) => writeFileSync(edge.configPath, typeof c === 'string' ? c : toYaml(c));
    const generation = async () => Number(/^ott_edge_config_generation (\d+)$/m.exec((await adminGet(edge, '/metrics')).body)[1]);
    const reloads = async (result) => Number(new RegExp(`^ott_edge_config_reloads_total\\{result="${result}"\\} (\\d+)$`, 'm').exec((await adminGet(edge, '/metrics')).body)[1]);
    const hup = async (gen) => {
        edge.kill('SIGHUP');
        await waitFor(async () => (await generation()) === gen, 10000, `generation ${gen}`);
    };

    it('starts with one site and its ACME certificate; load and 200 WebSockets run', { timeout: T }, async () => {
        cfg = {
            listen: pebble.edgeListen(),
            acme: pebble.edgeAcmeConfig(),
            shutdown: { delay: '0s', grace: '5s' },
            sites: [{ name: 'ott', domains: [OTT], upstreams: [upA.url] }],
        };
        edge = await startEdge({ config: cfg });
        cfg = { ...edge.config, sites: cfg.sites };
        await edge.waitForLog(/acme_certificate_installed .*site=ott/, 30000);
        assert.equal(await generation(), 1);
        load = startLoad({ port: edge.httpsPort, servername: OTT });
        wss = await openWebSockets(openWs, `wss://127.0.0.1:${edge.httpsPort}`, 200, { servername: OTT });
        await wss.check('start');
    });

    it('a second site added by SIGHUP is served at once and gets its certificate from pebble', { timeout: T }, async () => {
        cfg.sites = [...cfg.sites, { name: 'blog', domains: [BLOG], upstreams: [upB.url] }];
        write(cfg);
        await hup(2);
        await edge.waitForLog(/reloaded generation=2 sites=2/);
        const r = await httpsGet(edge.httpsPort, '/api/status', { servername: BLOG, headers: { host: BLOG } });
        assert.equal(r.status, 200);
        assert.equal(r.headers['x-upstream-name'], 'B', 'the new site proxies to its own upstream');
        await edge.waitForLog(/acme_certificate_installed .*site=blog/, 30000);
        const peer = await verifiedPeer(edge.httpsPort, BLOG, await pebble.root());
        assert.match(peer.subjectaltname, /DNS:blog\.reload\.test/);
        assert.equal(pebble.orderCount(), 2, 'one new order, for the new site only');
        assert.equal((await adminGet(edge, '/readyz')).status, 200);
        await wss.check('site-added');
    });

    it('an upstream server added to a pool takes traffic; the first one removed stops getting any', { timeout: T }, async () => {
        cfg.sites[0].upstreams = [upA.url, upB.url];
        write(cfg);
        const before = load.stats().byUpstream.B || 0;
        await hup(3);
        await waitFor(() => (load.stats().byUpstream.B || 0) > before + 20, 10000, 'requests reaching B');
        cfg.sites[0].upstreams = [upB.url];
        write(cfg);
        await hup(4);
        await new Promise((r) => setTimeout(r, 300)); // requests already under way end on A
        const a = load.stats().byUpstream.A || 0;
        await waitFor(() => load.stats().ok > a + 200, 10000, 'more requests');
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(load.stats().byUpstream.A || 0, a, 'A gets nothing once removed');
        await wss.check('pool-changed');
    });

    it('a new block_paths rule applies at once', { timeout: T }, async () => {
        assert.equal((await httpsGet(edge.httpsPort, '/api/secret', { servername: OTT, headers: { host: OTT } })).status, 200);
        cfg.sites[0].proxy = { block_paths: ['/api/status/metrics', '/api/secret'] };
        write(cfg);
        await hup(5);
        assert.equal((await httpsGet(edge.httpsPort, '/api/secret', { servername: OTT, headers: { host: OTT } })).status, 404);
        await wss.check('rule-added');
    });

    it('an access rule added by SIGHUP applies at once (403 on its path), the rest untouched', { timeout: T }, async () => {
        const get = (p) => httpsGet(edge.httpsPort, p, { servername: OTT, headers: { host: OTT } });
        assert.equal((await get('/api/room/create')).status, 200);
        cfg.sites[0].paths = [{ prefix: '/api/room/create', access: { deny: ['0.0.0.0/0', '::/0'] } }];
        write(cfg);
        await hup(6);
        assert.equal((await get('/api/room/create')).status, 403);
        assert.equal((await get('/api/status')).status, 200);
        await wss.check('access-added');
    });

    it('an invalid file is refused: key and line logged, the configuration in service unchanged', { timeout: T }, async () => {
        const failedBefore = await reloads('failed');
        write(toYaml(cfg) + 'compress:\n  level: 42\n');
        const r = await runEdge(['reload', '--admin', `127.0.0.1:${edge.adminPort}`], { timeoutMs: 20000 });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /compress\.level/);
        assert.match(r.stderr, /generation 6 still serves/);
        const line = await edge.waitForLog(/reload_failed /);
        assert.match(line, /compress\.level/);
        assert.match(line, /:\d+:/, 'the YAML line');
        assert.equal(await generation(), 6);
        assert.equal(await reloads('failed'), failedBefore + 1);
        const st = JSON.parse((await adminGet(edge, '/status.json')).body);
        assert.equal(st.config.generation, 6);
        assert.equal(st.config.last_reload_result, 'failed');
        assert.match(st.config.last_reload_message, /compress\.level/);
        // still the old configuration: the rule, the pool
        assert.equal((await httpsGet(edge.httpsPort, '/api/secret', { servername: OTT, headers: { host: OTT } })).status, 404);
        // a certificate file that does not exist is refused the same way
        write({ ...cfg, sites: [...cfg.sites, { name: 'bad', domains: ['bad.reload.test'], upstreams: [upB.url], tls: { cert_file: '/nonexistent.pem', key_file: '/nonexistent.key' } }] });
        edge.kill('SIGHUP');
        await waitFor(async () => (await reloads('failed')) === failedBefore + 2, 10000, 'second failed reload');
        assert.match(edge.stderr(), /reload_failed .*sites\[2\]\.tls\.cert_file/);
        assert.equal(await generation(), 6);
        await wss.check('invalid');
    });

    it('`ott-edge reload` applies a good file and says what needs an upgrade', { timeout: T }, async () => {
        write({ ...cfg, threads: 3 });
        const r = await runEdge(['reload', '--admin', `127.0.0.1:${edge.adminPort}`], { timeoutMs: 20000 });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /reloaded: configuration generation 7: needs an upgrade to apply: threads/);
        await edge.waitForLog(/reload_needs_upgrade keys=threads/);
        assert.equal(await reloads('ok'), 6);
        // POST only
        assert.equal((await adminGet(edge, '/reload')).status, 405);
    });

    it('no request failed and every WebSocket still echoes', { timeout: T }, async () => {
        await wss.check('end');
        const s = await load.stop();
        load = null;
        assert.ok(s.ok > 300, `requests done: ${s.ok}`);
        assert.equal(s.failed, 0, `failed requests: ${JSON.stringify(s.errors)}`);
        console.log(`# load: ${s.ok} ok, ${s.retried} retried as HTTP allows, ${s.failed} failed; by upstream ${JSON.stringify(s.byUpstream)}`);
        assert.ok(wss.socks.every((w) => !w.closeInfo), 'no WebSocket closed');
    });
});
