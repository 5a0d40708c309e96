// pebble — a real ACME server (Debian's `pebble` + `pebble-challtestsrv`) on loopback
// for the ACME integration tests. See ../../shared/notes/acme-test-server.md (or the
// project notes) for the recipe. Real validation: PEBBLE_VA_NOSLEEP=1,
// PEBBLE_AUTHZREUSE=0 (pebble 2.4 still reuses a valid authorization 1 time in 100: its test is
// rand.Intn(100) > percent; the client logs acme_authorization_reused then), and
// PEBBLE_VA_ALWAYS_VALID is never set here.
//
// Ports: each test file takes its own `slot` (0..49) so files can run in parallel:
//   pebble ACME     127.0.0.1:14000+10*slot      pebble management 127.0.0.1:15000+slot
//   challtestsrv    DNS 127.0.0.1:14003+10*slot,  management 127.0.0.1:14005+10*slot
//   validation      httpPort 5600+2*slot (HTTP-01), tlsPort 5601+2*slot (TLS-ALPN-01)
// ott-edge under test listens on httpPort/tlsPort so pebble validates against it.
//
// API:
//   pebblePorts(slot) -> {acme, mgmt, dns, ctsMgmt, httpPort, tlsPort}
//   startPebble({slot, validity, eab, env, start, dnsServer}) -> pebble object:
//     {dir, caFile, directory, ports, start(), stop(), restart(), logs(), orderCount(),
//      issuedCount(), root(), intermediate(), edgeAcmeConfig(extra)}
//   `start: false` prepares files and ports without starting (for "CA down" tests).
//   `dnsServer: '127.0.0.1:PORT'` makes pebble resolve through that server instead of its
//   challtestsrv (which is then not started): DNS-01 tests point it at a real resolver
//   (tests/lib/dns.mjs). Without it nothing changes.
//   addA(host, addresses) -> the mock DNS answers host with these IPv4 addresses (e.g. one where
//     nothing listens, to break one name's validation); clearA(host) undoes it. Only with the
//     mock DNS (no dnsServer).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, openSync, closeSync, readFileSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

const live = new Set();
const dirs = new Set();
const locks = new Set();
process.on('exit', () => {
    for (const l of locks) {
        try {
            unlinkSync(l);
        } catch {}
    }
    for (const p of live) {
        try {
            process.kill(p.pid, 'SIGKILL');
        } catch {}
    }
    for (const d of dirs) {
        try {
            rmSync(d, { recursive: true, force: true });
        } catch {}
    }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function pebblePorts(slot) {
    if (!(slot >= 0 && slot < 50)) throw new Error(`pebble slot ${slot} out of range 0..49`);
    return {
        acme: 14000 + 10 * slot,
        mgmt: 15000 + slot,
        dns: 14003 + 10 * slot,
        ctsMgmt: 14005 + 10 * slot,
        httpPort: 5600 + 2 * slot,
        tlsPort: 5601 + 2 * slot,
    };
}

function openssl(args, cwd) {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** GET over HTTPS trusting caFile; resolves {status, body}. */
function get(url, ca, timeoutMs = 3000) {
    return new Promise((resolve, reject) => {
        const req = https.get(url, { ca, timeout: timeoutMs }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode, body }));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
    });
}

function spawnLogged(file, args, env, sink) {
    const p = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(p);
    p.on('exit', () => live.delete(p));
    const on = (d) => {
        sink.push(d.toString());
        if (process.env.OTT_EDGE_TEST_VERBOSE === '1') process.stderr.write(`[pebble] ${d}`);
    };
    p.stdout.on('data', on);
    p.stderr.on('data', on);
    return p;
}

async function killWait(p) {
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    try {
        process.kill(p.pid, 'SIGKILL');
    } catch {}
    await Promise.race([done, sleep(3000)]);
}

/**
 * The ports of a slot are fixed, so the same test file run from two build trees at once
 * would collide: a lock file per slot (holding our pid; stale ones are taken over) makes
 * the second run wait for the first.
 */
async function lockSlot(slot, timeoutMs = 600000) {
    const file = path.join(os.tmpdir(), `ott-edge-pebble-slot-${slot}.lock`);
    const end = Date.now() + timeoutMs;
    for (;;) {
        try {
            const fd = openSync(file, 'wx');
            writeFileSync(fd, String(process.pid));
            closeSync(fd);
            locks.add(file);
            return file;
        } catch (e) {
            if (e.code !== 'EEXIST') throw e;
        }
        let owner = 0;
        try {
            owner = Number(readFileSync(file, 'utf8'));
        } catch {}
        let alive = false;
        try {
            if (owner > 0) {
                process.kill(owner, 0);
                alive = true;
            }
        } catch {}
        if (!alive && owner > 0) {
            try {
                unlinkSync(file); // stale: its owner is gone
            } catch {}
            continue;
        }
        if (Date.now() > end) throw new Error(`pebble slot ${slot} is held by pid ${owner} (${file})`);
        await sleep(200);
    }
}

/** POSTs JSON to pebble-challtestsrv's management port; resolves when it answers 200. */
function ctsPost(port, pathname, body) {
    return new Promise((resolve, reject) => {
        const data = JSON.stringify(body);
        const req = http.request({ host: '127.0.0.1', port, path: pathname, method: 'POST', timeout: 3000,
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
            res.resume();
            res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`challtestsrv ${pathname}: ${res.statusCode}`))));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
        req.end(data);
    });
}

export async function startPebble({ slot, validity = 3600, eab = null, env = {}, start = true, dnsServer = null } = {}) {
    const ports = pebblePorts(slot);
    if (![...locks].some((l) => l.endsWith(`-slot-${slot}.lock`))) await lockSlot(slot);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ott-edge-pebble-'));
    dirs.add(dir);
    // pebble's own HTTPS listener certificate, signed by a CA that ott-edge trusts (acme.ca_file)
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '3650',
        '-subj', '/CN=pebble test CA', '-keyout', 'ca.key', '-out', 'ca.pem'], dir);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost',
        '-keyout', 'localhost.key', '-out', 'localhost.csr'], dir);
    writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n');
    openssl(['x509', '-req', '-in', 'localhost.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days',
        '3650', '-extfile', 'ext.cnf', '-out', 'localhost.pem'], dir);
    const conf = {
        pebble: {
            listenAddress: `127.0.0.1:${ports.acme}`,
            managementListenAddress: `127.0.0.1:${ports.mgmt}`,
            certificate: path.join(dir, 'localhost.pem'),
            privateKey: path.join(dir, 'localhost.key'),
            httpPort: ports.httpPort,
            tlsPort: ports.tlsPort,
            ocspResponderURL: '',
            externalAccountBindingRequired: !!eab,
            certificateValidityPeriod: validity,
        },
    };
    if (eab) conf.pebble.externalAccountMACKeys = eab;
    writeFileSync(path.join(dir, 'pebble.json'), JSON.stringify(conf, null, 2));
    const caFile = path.join(dir, 'ca.pem');
    const ca = execFileSync('cat', [caFile]).toString();
    const out = [];
    let cts = null;
    let peb = null;

    const self = {
        dir,
        caFile,
        ports,
        directory: `https://127.0.0.1:${ports.acme}/dir`,
        get pid() {
            return peb?.pid;
        },
        async start() {
            if (peb) return;
            if (!dnsServer) {
                cts = spawnLogged('pebble-challtestsrv', ['-dns01', `127.0.0.1:${ports.dns}`, '-http01', '', '-https01', '',
                    '-tlsalpn01', '', '-management', `127.0.0.1:${ports.ctsMgmt}`, '-defaultIPv6', ''], {}, out);
            }
            peb = spawnLogged('pebble', ['-config', path.join(dir, 'pebble.json'), '-dnsserver', dnsServer || `127.0.0.1:${ports.dns}`], {
                PEBBLE_VA_NOSLEEP: '1',
                PEBBLE_WFE_NONCEREJECT: '0',
                PEBBLE_AUTHZREUSE: '0',
                ...env,
            }, out);
            const end = Date.now() + 15000;
            for (;;) {
                try {
                    const r = await get(self.directory, ca, 1000);
                    if (r.status === 200) break;
                } catch {}
                if (peb.exitCode !== null || Date.now() > end) {
                    const why = peb.exitCode !== null ? 'exited' : 'did not start';
                    await self.stop(); // never leave challtestsrv running: it would keep node alive
                    throw new Error(`pebble ${why}: ${out.join('')}`);
                }
                await sleep(50);
            }
        },
        async stop() {
            await killWait(peb);
            await killWait(cts);
            peb = cts = null;
        },
        async restart() {
            await self.stop();
            await self.start();
        },
        logs: () => out.join(''),
        /** newOrder requests seen by pebble (all runs of this instance) */
        orderCount: () => (out.join('').match(/POST \/order-plz/g) || []).length,
        issuedCount: () => (out.join('').match(/Issued certificate serial/g) || []).length,
        async root() {
            const r = await get(`https://127.0.0.1:${ports.mgmt}/roots/0`, ca);
            if (r.status !== 200) throw new Error(`pebble /roots/0: ${r.status}`);
            return r.body;
        },
        /** root number n (alternate roots: PEBBLE_ALTERNATE_ROOTS) */
        async rootN(n) {
            const r = await get(`https://127.0.0.1:${ports.mgmt}/roots/${n}`, ca);
            if (r.status !== 200) throw new Error(`pebble /roots/${n}: ${r.status}`);
            return r.body;
        },
        async intermediate() {
            const r = await get(`https://127.0.0.1:${ports.mgmt}/intermediates/0`, ca);
            if (r.status !== 200) throw new Error(`pebble /intermediates/0: ${r.status}`);
            return r.body;
        },
        /** the `acme:` section for an ott-edge config talking to this pebble */
        edgeAcmeConfig(extra = {}) {
            return { directory: self.directory, ca_file: caFile, ...extra };
        },
        /** mock DNS (pebble-challtestsrv): host resolves to addresses for pebble's validation */
        addA(host, addresses) {
            if (dnsServer) throw new Error('addA needs the mock DNS (startPebble without dnsServer)');
            return ctsPost(ports.ctsMgmt, '/add-a', { host: host.endsWith('.') ? host : `${host}.`, addresses });
        },
        clearA(host) {
            if (dnsServer) throw new Error('clearA needs the mock DNS (startPebble without dnsServer)');
            return ctsPost(ports.ctsMgmt, '/clear-a', { host: host.endsWith('.') ? host : `${host}.` });
        },
        /** the `listen:` section putting ott-edge on the ports pebble validates against */
        edgeListen(adminPort) {
            const l = { https: `127.0.0.1:${ports.tlsPort}`, http: `127.0.0.1:${ports.httpPort}` };
            if (adminPort) l.admin = `127.0.0.1:${adminPort}`;
            return l;
        },
    };
    if (start) await self.start();
    return self;
}

// ---------------------------------------------------------------- ott-edge against pebble

/** Config for ott-edge on pebble's validation ports (merge into startEdge's `config`). */
export function edgeConfigFor(pebble, { domains = ['a.ott-edge.test', 'b.ott-edge.test'], acme = {}, upstream } = {}) {
    return {
        domains,
        upstream: upstream || 'http://127.0.0.1:9',
        listen: pebble.edgeListen(),
        acme: pebble.edgeAcmeConfig(acme),
    };
}

/**
 * Handshakes with port as servername, verifying the served chain against rootPem (and the
 * name). Resolves to the leaf {serialNumber, issuer, subjectaltname, valid_to}; rejects when
 * verification fails.
 */
export function verifiedPeer(port, servername, rootPem, { timeoutMs = 5000 } = {}) {
    return new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, servername, ca: rootPem, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'] });
        const t = setTimeout(() => s.destroy(new Error('TLS handshake timeout')), timeoutMs);
        s.once('secureConnect', () => {
            clearTimeout(t);
            const c = s.getPeerCertificate(true);
            const r = { serialNumber: c.serialNumber, issuer: c.issuer, subjectaltname: c.subjectaltname, valid_to: c.valid_to, chainIssuer: c.issuerCertificate?.issuer };
            s.destroy();
            resolve(r);
        });
        s.once('error', (e) => {
            clearTimeout(t);
            reject(e);
        });
    });
}
