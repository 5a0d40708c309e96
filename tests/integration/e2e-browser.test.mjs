// e2e-browser — the stack as a user meets it: Debian's Chromium (headless, via
// playwright-core) opens https://demo.ott-edge.test/ through ott-edge, whose certificate
// comes from a real ACME server (pebble, HTTP-01) and is trusted by the browser the way a
// user trusts a CA (pebble's root imported into the NSS database of a fresh HOME; no
// certificate error is ignored). Asserts: the page came over h2 with the ACME certificate;
// the page's WebSocket to /api/room/demo connected and echoes; a cookie set by the
// upstream is sent back; after a renewal of the short-lived certificate (45 s) the open
// WebSocket is still connected and still echoes, and a new browser gets the new
// certificate. A browser without the root refuses the page. Saves a screenshot to
// tests/artifacts/e2e-browser.png.
//
// Ports: pebble slot 40 (ACME 14400, management 15040, ott-edge on 5680/5681).
// Skipped (not failed) when chromium, certutil or playwright-core are missing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startEdge, startUpstream, adminGet, slow, waitFor, headerValues, TESTS_DIR } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor } from '../lib/pebble.mjs';
import { launchBrowser, browserAvailable } from '../lib/browser.mjs';

const NAME = 'demo.ott-edge.test';
const VALIDITY = 45; // seconds; renewal when a third is left (~30 s after issuance)
const ARTIFACTS = path.join(TESTS_DIR, 'artifacts');
const SCREENSHOT = path.join(ARTIFACTS, 'e2e-browser.png');
const T = 60000 * slow;
const missing = await browserAvailable();

/** Runs fn in the page: round trip of one text message on the page's own WebSocket (`ws`). */
function pageEcho(page, text, ms = 5000) {
    return page.evaluate(
        ([text, ms]) =>
            new Promise((resolve, reject) => {
                // `ws` is the page script's top-level const (see tests/upstream/ott-upstream.mjs)
                if (typeof ws === 'undefined' || ws.readyState !== WebSocket.OPEN) {
                    return reject(new Error(`page WebSocket not open (readyState ${typeof ws === 'undefined' ? 'none' : ws.readyState})`));
                }
                const t = setTimeout(() => reject(new Error(`no echo of ${text} in ${ms} ms`)), ms);
                const on = (e) => {
                    if (e.data === text) {
                        clearTimeout(t);
                        ws.removeEventListener('message', on);
                        resolve(e.data);
                    }
                };
                ws.addEventListener('message', on);
                ws.send(text);
            }),
        [text, ms * slow],
    );
}

const renewalsOk = async (edge) => Number(/ott_edge_acme_renewals_total\{result="ok"\} (\d+)/.exec((await adminGet(edge, '/metrics')).body)?.[1] ?? 0);

describe('browser end to end (Chromium, h2, WebSocket, cookies, ACME renewal)', { skip: missing || false }, () => {
    let pebble, up, edge, root, browser, page, url;
    const docProtocols = []; // CDP Network.responseReceived protocol of Document responses
    const sockets = []; // {url, received: [], sent: [], closed: false}
    const security = []; // CDP Security.visibleSecurityStateChanged states

    before(async () => {
        pebble = await startPebble({ slot: 40, validity: VALIDITY });
        up = await startUpstream();
        edge = await startEdge({
            config: { ...edgeConfigFor(pebble, { domains: [NAME], acme: { challenges: ['http-01'] }, upstream: up.url }), log: { access: true } },
            waitReady: true,
            timeoutMs: 30000,
        });
        await edge.waitForLog(/acme_certificate_installed/, 5000);
        root = await pebble.root();
        url = `https://${NAME}:${pebble.ports.tlsPort}/`;
        browser = await launchBrowser({ trustPem: root, hostMap: [NAME], timeoutMs: 20000 * slow });
        page = browser.page;
        const cdp = await browser.context.newCDPSession(page);
        await cdp.send('Network.enable');
        await cdp.send('Security.enable');
        cdp.on('Security.visibleSecurityStateChanged', (e) => security.push(e.visibleSecurityState));
        cdp.on('Network.responseReceived', (e) => {
            if (e.type === 'Document') docProtocols.push({ url: e.response.url, protocol: e.response.protocol });
        });
        page.on('websocket', (w) => {
            const s = { url: w.url(), received: [], sent: [], closed: false };
            sockets.push(s);
            w.on('framereceived', (f) => s.received.push(String(f.payload)));
            w.on('framesent', (f) => s.sent.push(String(f.payload)));
            w.on('close', () => (s.closed = true));
        });
    }, { timeout: 90000 * slow });

    after(async () => {
        await browser?.close();
        await edge?.stop();
        await pebble?.stop();
        await up?.stop();
    }, { timeout: 60000 });

    let firstCert;
    it('loads the page over HTTP/2 with the ACME certificate verified by Chromium', { timeout: T }, async () => {
        const resp = await page.goto(url, { waitUntil: 'load' });
        assert.equal(resp.status(), 200);
        const sec = await resp.securityDetails();
        assert.equal(sec.subjectName, NAME);
        assert.match(sec.issuer, /Pebble Intermediate/);
        assert.match(sec.protocol, /TLS 1\.[23]/);
        firstCert = sec;
        assert.deepEqual(docProtocols.map((d) => d.protocol), ['h2'], `document protocols ${JSON.stringify(docProtocols)}`);
        assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol), 'h2');
        // Chromium's own verdict on the page's security (the lock icon): "secure", no errors
        await waitFor(() => security.at(-1)?.securityState === 'secure', 5000, 'Chromium security state "secure"').catch((e) => {
            throw new Error(`${e.message}; states seen: ${JSON.stringify(security)}`);
        });
        assert.deepEqual(security.at(-1).certificateSecurityState?.certificateNetworkError ?? null, null);
    });

    it("connects the page's WebSocket to /api/room/demo and a message goes round trip", { timeout: T }, async () => {
        await waitFor(async () => (await page.textContent('#s')) === 'open', 10000, 'page WebSocket status "open"');
        assert.equal(sockets.length, 1);
        assert.equal(sockets[0].url, `wss://${NAME}:${pebble.ports.tlsPort}/api/room/demo`);
        // the page sends {"type":"chat","text":"hi"} on open; the upstream says hello then echoes
        await waitFor(() => sockets[0].received.includes('{"type":"chat","text":"hi"}'), 5000, 'echo of the page\'s hi');
        assert.equal(sockets[0].received[0], '{"type":"hello","room":"demo"}');
        assert.equal(await pageEcho(page, '{"type":"chat","text":"round trip"}'), '{"type":"chat","text":"round trip"}');
        assert.match(await page.textContent('#log'), /round trip/);
    });

    it('sends a cookie set by the upstream back on the next request', { timeout: T }, async () => {
        const jar = await browser.context.cookies(url);
        const session = jar.find((c) => c.name === 'session');
        assert.ok(session, `no session cookie in ${JSON.stringify(jar)}`);
        assert.equal(session.httpOnly, true);
        assert.equal(session.secure, true);
        const seen = await page.evaluate(async () => {
            const r = await fetch('/debug/headers', { credentials: 'include' });
            return { status: r.status, body: await r.json() };
        });
        assert.equal(seen.status, 200);
        // over h2 Chromium may split cookies into several fields; ott-edge joins them for HTTP/1.1
        const cookie = headerValues(seen.body, 'cookie').join('; ');
        assert.match(cookie, new RegExp(`(^|; )session=${session.value}(;|$)`), `upstream saw Cookie: ${cookie}`);
        assert.match(cookie, /(^|; )token=[0-9a-f]+(;|$)/);
    });

    it('keeps the open WebSocket connected and echoing across a certificate renewal', { timeout: 120000 * slow }, async () => {
        const before = await renewalsOk(edge);
        assert.ok(before >= 1);
        const installedBefore = edge.logs.filter((l) => /acme_certificate_installed/.test(l)).length;
        await waitFor(async () => (await renewalsOk(edge)) > before, (VALIDITY + 30) * 1000, 'a renewal in /metrics');
        await waitFor(() => edge.logs.filter((l) => /acme_certificate_installed/.test(l)).length > installedBefore, 5000, 'a new certificate installed');

        assert.equal(sockets.length, 1, 'the page opened another WebSocket');
        assert.equal(sockets[0].closed, false, 'the WebSocket closed during the renewal');
        assert.equal(await page.evaluate(() => ws.readyState), 1);
        assert.equal(await page.textContent('#s'), 'open');
        assert.equal(await pageEcho(page, '{"type":"chat","text":"after renewal"}'), '{"type":"chat","text":"after renewal"}');
        // and ordinary requests still work on the page's connection
        assert.equal(await page.evaluate(async () => (await fetch('/api/status')).status), 200);

        mkdirSync(ARTIFACTS, { recursive: true });
        writeFileSync(path.join(ARTIFACTS, '.gitignore'), '*\n'); // artifacts are never committed
        await page.screenshot({ path: SCREENSHOT });
    });

    it('a fresh browser trusting the root gets the renewed certificate; one without it refuses', { timeout: T }, async () => {
        const fresh = await launchBrowser({ trustPem: root, hostMap: [NAME], timeoutMs: 20000 * slow });
        try {
            const resp = await fresh.page.goto(url);
            assert.equal(resp.status(), 200);
            const sec = await resp.securityDetails();
            assert.equal(sec.subjectName, NAME);
            assert.ok(sec.validFrom > firstCert.validFrom, `renewed certificate valid from ${sec.validFrom}, first ${firstCert.validFrom}`);
        } finally {
            await fresh.close();
        }
        const untrusting = await launchBrowser({ hostMap: [NAME], timeoutMs: 20000 * slow });
        try {
            await assert.rejects(untrusting.page.goto(url), /ERR_CERT_AUTHORITY_INVALID/);
        } finally {
            await untrusting.close();
        }
    });
});
