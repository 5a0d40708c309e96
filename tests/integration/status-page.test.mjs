// status-page — the admin status page as an operator sees it: Debian's Chromium (headless,
// via playwright-core, as in e2e-browser) opens http://127.0.0.1:<admin>/ of an ott-edge
// that got its certificate from a real ACME server (pebble, HTTP-01) and proxies to a live
// upstream while traffic and a WebSocket flow. Waits until the page has drawn its charts
// from /status.json, asserts the certificate names, days left, the upstream state and the
// ACME events shown, that it fits a phone's width, and that it says "unreachable" when
// ott-edge is gone. Saves a screenshot to tests/artifacts/status-page.png (and, with
// OTT_EDGE_UPDATE_DOCS=1, to docs/status-page.png, the one the README shows).
//
// Ports: pebble slot 48 (ACME 14480, ott-edge on 5696/5697).
// Skipped (not failed) when chromium, certutil or playwright-core are missing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startEdge, startUpstream, adminGet, openWs, curl, slow, sleep, waitFor, TESTS_DIR } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor } from '../lib/pebble.mjs';
import { launchBrowser, browserAvailable } from '../lib/browser.mjs';

const NAME = 'demo.ott-edge.test';
const ARTIFACTS = path.join(TESTS_DIR, 'artifacts');
const SCREENSHOT = path.join(ARTIFACTS, 'status-page.png');
const DOCS_SCREENSHOT = path.join(TESTS_DIR, '..', 'docs', 'status-page.png');
const T = 60000 * slow;
const VALIDITY_DAYS = 90; // as Let's Encrypt's
const missing = await browserAvailable();

describe('the status page in Chromium', { skip: missing || false }, () => {
    let pebble, up, edge, browser, page, ws, traffic;
    let stop = false;

    before(async () => {
        pebble = await startPebble({ slot: 48, validity: VALIDITY_DAYS * 86400 });
        up = await startUpstream();
        edge = await startEdge({
            config: { ...edgeConfigFor(pebble, { domains: [NAME], acme: { challenges: ['http-01'] }, upstream: up.url }), proxy: { health_interval: '1s' } },
            waitReady: true,
            timeoutMs: 30000,
        });
        // a WebSocket held open and a trickle of requests (some 404s at the edge) for the charts
        ws = await openWs(`wss://127.0.0.1:${pebble.ports.tlsPort}/api/room/status`, { servername: NAME });
        await ws.nextJson();
        const base = `https://${NAME}:${pebble.ports.tlsPort}`;
        const resolve = ['--resolve', `${NAME}:${pebble.ports.tlsPort}:127.0.0.1`];
        traffic = (async () => {
            for (let i = 0; !stop; i++) {
                const paths = i % 5 === 4 ? ['/api/status/metrics'] : ['/api/status', '/', '/api/status'];
                await curl(['-k', '--http2', ...resolve, ...paths.flatMap((p) => ['-o', '/dev/null', `${base}${p}`])]);
                await sleep(150);
            }
        })();
        browser = await launchBrowser({ timeoutMs: 20000 * slow });
        page = browser.page;
    }, { timeout: 90000 * slow });

    after(async () => {
        stop = true;
        await traffic;
        ws?.close();
        await browser?.close();
        await edge?.stop();
        await pebble?.stop();
        await up?.stop();
    }, { timeout: 60000 });

    it('draws the charts and shows the certificate, days left and the upstream state', { timeout: T }, async () => {
        await page.setViewportSize({ width: 1200, height: 900 });
        const errors = [];
        page.on('pageerror', (e) => errors.push(String(e)));
        page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
        const resp = await page.goto(`http://127.0.0.1:${edge.adminPort}/`, { waitUntil: 'load' });
        assert.equal(resp.status(), 200);
        assert.equal(await page.title(), 'ott-edge status');
        // history is sampled every 2 s: wait for a few points on each chart
        await waitFor(async () => Number(await page.getAttribute('#chart-rps', 'data-points')) >= 4, 20000, 'the requests chart to draw 4 points');
        await waitFor(async () => Number(await page.getAttribute('#chart-conns', 'data-points')) >= 4, 5000, 'the connections chart to draw');
        const line = await page.$eval('#chart-rps polyline', (p) => p.getAttribute('points'));
        assert.ok(line.split(' ').some((pt) => Number(pt.split(',')[1]) < 98), `the requests line is flat: ${line}`);

        assert.equal(await page.textContent('#state'), 'ready');
        assert.equal(await page.textContent('.site .cert-names'), NAME);
        const days = Number(await page.textContent(".site .days-left"));
        assert.ok(days > VALIDITY_DAYS - 0.2 && days <= VALIDITY_DAYS, `days left ${days}`);
        const status = JSON.parse((await adminGet(edge, '/status.json')).body);
        assert.equal(days, Number(status.sites[0].certificate.days_left.toFixed(1)));
        assert.match(await page.textContent('.site'), /Pebble Intermediate/);
        assert.match(await page.textContent('.site'), /acme/);
        assert.equal(await page.textContent('.site .upstream-state'), 'up');
        assert.match(await page.textContent('.site'), new RegExp(up.url.replace(/\./g, '\\.')));
        assert.match(await page.textContent('#events'), /acme_certificate_installed/);
        assert.match(await page.textContent('#tiles'), /WebSockets/);
        const tiles = await page.$$eval('#tiles .tile', (ts) => Object.fromEntries(ts.map((t) => [t.querySelector('span').textContent, t.querySelector('b').textContent])));
        assert.equal(tiles.WebSockets, '1', JSON.stringify(tiles));
        assert.equal(tiles['rate-limited'], '–');
        assert.deepEqual(errors, []);

        mkdirSync(ARTIFACTS, { recursive: true });
        writeFileSync(path.join(ARTIFACTS, '.gitignore'), '*\n'); // artifacts are never committed
        await page.screenshot({ path: SCREENSHOT, fullPage: true });
        if (process.env.OTT_EDGE_UPDATE_DOCS === '1') copyFileSync(SCREENSHOT, DOCS_SCREENSHOT);
    });

    it("fits a phone's width", { timeout: T }, async () => {
        await page.setViewportSize({ width: 390, height: 844 });
        await sleep(300);
        const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
        assert.ok(scroll <= inner, `page is ${scroll} px wide in a ${inner} px viewport`);
        const chart = await page.$eval('#chart-rps', (e) => e.getBoundingClientRect().width);
        assert.ok(chart > 300 && chart <= 390, `chart is ${chart} px wide`);
        const font = await page.$eval('body', (e) => parseFloat(getComputedStyle(e).fontSize));
        assert.ok(font >= 14, `font size ${font}px`);
    });

    it('says so when ott-edge is gone', { timeout: T }, async () => {
        const loaded = Number(await page.getAttribute('body', 'data-loaded'));
        assert.ok(loaded >= 2, `page refreshed ${loaded} times`);
        stop = true;
        await traffic;
        await edge.stop();
        await waitFor(async () => (await page.textContent('#state')) === 'unreachable', 6000, 'the page to say unreachable');
    });
});
