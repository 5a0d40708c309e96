#!/usr/bin/env node
// wiring — checks that the deployment files are wired the way ott-edge expects.
// Schema validity is checked elsewhere (docker-compose config, validate-k8s.mjs,
// systemd-analyze verify); this checks the meaning:
//
//   node wiring.mjs compose COMPOSE_CONFIG.yaml    (the output of `docker-compose config`)
//       ott-edge publishes 80 and 443, OTT_EDGE_UPSTREAM points at the OTT service on 8080,
//       a named volume at /var/lib/ott-edge, OTT has PORT=8080 and TRUST_PROXY=1, and its
//       Redis/PostgreSQL hosts are services of the file.
//       Also prints the ott-edge service's OTT_EDGE_* variables (KEY=VALUE lines) on
//       stdout so the caller can run `ott-edge check-config` with them.
//   node wiring.mjs kubernetes DIR
//       native sidecar (initContainers + restartPolicy: Always) running ott-edge, probes on
//       the admin port (startup /livez, readiness /readyz, liveness /livez),
//       terminationGracePeriodSeconds > shutdown.delay + shutdown.grace, security context,
//       the state volume at state_dir, the Service on 80/443, OTT on 8080 with TRUST_PROXY=1.
//       Prints the ConfigMap's config.yaml on stdout (for check-config).
//   node wiring.mjs dockerfile Dockerfile [.dockerignore]
//       the build stage runs tools/deps.sh build and builds ott-edge; the runtime stage is
//       debian:bookworm-slim, non-root, with the volume, ports, STOPSIGNAL, HEALTHCHECK;
//       every COPY source exists and is not excluded by .dockerignore.
//   node wiring.mjs single-dockerfile deploy/single-container/Dockerfile .dockerignore
//       OTT's image as the base (a global ARG default counts), ENTRYPOINT ["ott-edge", "--"]
//       + OTT's command as CMD, a build stage identical to ./Dockerfile's (shared build
//       cache), and the same COPY/.dockerignore checks (the build context is the repo root).
//   node wiring.mjs systemd UNIT
//       the hardening the deploy docs promise is present.
//
// Run from the repository root (the Docker build context). Exit 0 when all hold; 1 with
// one line per problem on stderr.

import fs from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

const [mode, target, extra] = process.argv.slice(2);
const problems = [];
const need = (cond, msg) => {
    if (!cond) problems.push(msg);
    return !!cond;
};

function parseDuration(s) {
    const m = /^(\d+)(ms|s|m|h|d)?$/.exec(String(s ?? '').trim());
    if (!m) return NaN;
    const n = Number(m[1]);
    return n * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2] || 's'];
}

function envMap(env) {
    // docker-compose config prints a mapping; accept a list of K=V too.
    if (Array.isArray(env)) return Object.fromEntries(env.map((e) => [e.split('=')[0], e.split('=').slice(1).join('=')]));
    return env || {};
}

function checkCompose(file) {
    const c = parse(fs.readFileSync(file, 'utf8'));
    const services = c?.services || {};
    const names = Object.keys(services);
    const edgeName = names.find((n) => /ott-edge/.test(services[n].image || '') || services[n].build);
    const ottName = names.find((n) => /^dyc3\/opentogethertube(:|$)/.test(services[n].image || ''));
    if (!need(edgeName, 'compose: no ott-edge service (image ott-edge or build: .)')) return;
    if (!need(ottName, 'compose: no OTT service (image dyc3/opentogethertube)')) return;
    const edge = services[edgeName];
    const ott = services[ottName];

    const ports = (edge.ports || []).map((p) =>
        typeof p === 'object' ? { published: Number(p.published), target: Number(p.target) } : (() => {
            const parts = String(p).split(':');
            return { published: Number(parts.at(-2)), target: Number(parts.at(-1).split('/')[0]) };
        })(),
    );
    for (const port of [80, 443])
        need(ports.some((p) => p.published === port && p.target === port), `compose: ${edgeName} must publish ${port}:${port}`);
    need(!ports.some((p) => p.target === 9901), `compose: ${edgeName} must not publish the admin port 9901`);

    const eenv = envMap(edge.environment);
    need(eenv.OTT_EDGE_UPSTREAM === `http://${ottName}:8080`,
        `compose: ${edgeName} OTT_EDGE_UPSTREAM must be http://${ottName}:8080 (is ${eenv.OTT_EDGE_UPSTREAM})`);
    need(eenv.OTT_EDGE_DOMAINS, `compose: ${edgeName} needs OTT_EDGE_DOMAINS`);
    need(eenv.OTT_EDGE_ACME_EMAIL, `compose: ${edgeName} needs OTT_EDGE_ACME_EMAIL`);

    const vols = (edge.volumes || []).map((v) =>
        typeof v === 'object' ? v : { type: String(v).startsWith('/') || String(v).startsWith('.') ? 'bind' : 'volume', source: String(v).split(':')[0], target: String(v).split(':')[1] },
    );
    const state = vols.find((v) => v.target === '/var/lib/ott-edge');
    if (need(state, `compose: ${edgeName} needs a volume at /var/lib/ott-edge`)) {
        need(state.type === 'volume' && c.volumes && state.source in c.volumes,
            `compose: /var/lib/ott-edge must be a named volume declared under volumes: (is ${state.type} ${state.source})`);
    }
    need(parseDuration(edge.stop_grace_period) > 30, `compose: ${edgeName} stop_grace_period must exceed shutdown.delay + shutdown.grace (30s)`);

    const oenv = envMap(ott.environment);
    need(String(oenv.PORT) === '8080', `compose: ${ottName} needs PORT=8080 (is ${oenv.PORT})`);
    need(String(oenv.TRUST_PROXY) === '1', `compose: ${ottName} needs TRUST_PROXY=1 (one proxy: ott-edge) (is ${oenv.TRUST_PROXY})`);
    need(!(ott.ports || []).length, `compose: ${ottName} must not publish ports (only ott-edge faces the internet)`);
    for (const [k, what] of [['REDIS_HOST', 'Redis'], ['POSTGRES_HOST', 'PostgreSQL']]) {
        if (need(oenv[k] && services[oenv[k]], `compose: ${ottName} ${k} must name the ${what} service of this file (is ${oenv[k]})`)) {
            const deps = Array.isArray(ott.depends_on) ? ott.depends_on : Object.keys(ott.depends_on || {});
            need(deps.includes(oenv[k]), `compose: ${ottName} must depend_on ${oenv[k]}`);
        }
    }
    const edeps = Array.isArray(edge.depends_on) ? edge.depends_on : Object.keys(edge.depends_on || {});
    need(edeps.includes(ottName), `compose: ${edgeName} must depend_on ${ottName}`);

    if (!problems.length)
        for (const [k, v] of Object.entries(eenv)) if (k.startsWith('OTT_EDGE_')) process.stdout.write(`${k}=${v}\n`);
}

function checkKubernetes(dir) {
    const objs = [];
    for (const f of fs.readdirSync(dir).sort()) {
        if (!/\.ya?ml$/.test(f)) continue;
        for (const d of parseAllDocuments(fs.readFileSync(path.join(dir, f), 'utf8'))) {
            const o = d.toJS();
            if (o && o.kind) objs.push(o);
        }
    }
    const byKind = (k) => objs.filter((o) => o.kind === k);
    const pod = byKind('Deployment').map((d) => d.spec?.template?.spec).find((s) =>
        (s?.initContainers || []).some((c) => /ott-edge/.test(c.image || '')),
    );
    if (!need(pod, 'kubernetes: no Deployment with ott-edge in initContainers (native sidecar)')) return;
    const edge = pod.initContainers.find((c) => /ott-edge/.test(c.image || ''));
    need(edge.restartPolicy === 'Always', 'kubernetes: the ott-edge initContainer needs restartPolicy: Always (native sidecar)');
    need(!(pod.containers || []).some((c) => /ott-edge/.test(c.image || '')), 'kubernetes: ott-edge must not also be a regular container');

    // The configuration it runs with.
    const cmName = (pod.volumes || []).find((v) => v.configMap && (edge.volumeMounts || []).some((m) => m.name === v.name && m.mountPath === '/etc/ott-edge'))?.configMap?.name;
    const cm = byKind('ConfigMap').find((c) => c.metadata?.name === cmName);
    if (!need(cm?.data?.['config.yaml'], 'kubernetes: a ConfigMap with config.yaml mounted at /etc/ott-edge in the sidecar')) return;
    need((edge.args || []).join(' ').includes('--config /etc/ott-edge/config.yaml'), 'kubernetes: sidecar args must pass --config /etc/ott-edge/config.yaml');
    const cfg = parse(cm.data['config.yaml']) || {};
    const adminPort = Number(String(cfg.listen?.admin ?? ':9901').split(':').pop());
    const stateDir = cfg.state_dir || '/var/lib/ott-edge';
    const delay = parseDuration(cfg.shutdown?.delay ?? '5s');
    const grace = parseDuration(cfg.shutdown?.grace ?? '25s');

    const portByName = Object.fromEntries((edge.ports || []).map((p) => [p.name, p.containerPort]));
    const probePort = (p) => (typeof p?.httpGet?.port === 'string' ? portByName[p.httpGet.port] : p?.httpGet?.port);
    for (const [probe, pathWanted] of [['startupProbe', '/livez'], ['readinessProbe', '/readyz'], ['livenessProbe', '/livez']]) {
        const p = edge[probe];
        if (need(p?.httpGet, `kubernetes: sidecar needs an httpGet ${probe}`)) {
            need(p.httpGet.path === pathWanted, `kubernetes: ${probe} must GET ${pathWanted} (is ${p.httpGet.path})`);
            need(probePort(p) === adminPort, `kubernetes: ${probe} must use the admin port ${adminPort} (is ${p.httpGet.port})`);
        }
    }
    need(Number(pod.terminationGracePeriodSeconds) > delay + grace,
        `kubernetes: terminationGracePeriodSeconds (${pod.terminationGracePeriodSeconds}) must exceed shutdown.delay + shutdown.grace (${delay + grace})`);

    const sc = edge.securityContext || {};
    need(sc.runAsNonRoot === true && Number(sc.runAsUser) > 0, 'kubernetes: sidecar must run as non-root (runAsNonRoot, runAsUser)');
    need(sc.readOnlyRootFilesystem === true, 'kubernetes: sidecar needs readOnlyRootFilesystem: true');
    need(sc.allowPrivilegeEscalation === false, 'kubernetes: sidecar needs allowPrivilegeEscalation: false');
    need(JSON.stringify(sc.capabilities?.drop) === '["ALL"]', 'kubernetes: sidecar must drop ALL capabilities');
    need(JSON.stringify(sc.capabilities?.add || []) === '["NET_BIND_SERVICE"]', 'kubernetes: sidecar may add NET_BIND_SERVICE only');
    const lowPorts = [80, 443].some((p) => Object.values(portByName).includes(p));
    if (lowPorts)
        need((pod.securityContext?.sysctls || []).some((s) => s.name === 'net.ipv4.ip_unprivileged_port_start' && s.value === '0'),
            'kubernetes: binding 80/443 with allowPrivilegeEscalation: false needs the pod sysctl net.ipv4.ip_unprivileged_port_start=0');

    const stateMount = (edge.volumeMounts || []).find((m) => m.mountPath === stateDir);
    if (need(stateMount, `kubernetes: sidecar needs a volume at state_dir ${stateDir}`)) {
        const vol = (pod.volumes || []).find((v) => v.name === stateMount.name);
        const claim = vol?.persistentVolumeClaim?.claimName;
        need(claim && byKind('PersistentVolumeClaim').some((p) => p.metadata?.name === claim), `kubernetes: state_dir must be on a PersistentVolumeClaim defined here`);
    }

    const ott = (pod.containers || []).find((c) => /opentogethertube/.test(c.image || ''));
    if (need(ott, 'kubernetes: the Deployment needs the OTT container (dyc3/opentogethertube)')) {
        const env = Object.fromEntries((ott.env || []).map((e) => [e.name, e.value]));
        need(env.PORT === '8080', 'kubernetes: OTT needs PORT=8080');
        need(env.TRUST_PROXY === '1', 'kubernetes: OTT needs TRUST_PROXY=1');
        need(cfg.upstream === 'http://127.0.0.1:8080', `kubernetes: upstream must be http://127.0.0.1:8080 (same pod) (is ${cfg.upstream})`);
    }

    const labels = byKind('Deployment').find((d) => d.spec?.template?.spec === pod)?.spec?.template?.metadata?.labels || {};
    const svc = byKind('Service').find((s) => s.spec?.type === 'LoadBalancer');
    if (need(svc, 'kubernetes: a Service of type LoadBalancer')) {
        need(Object.entries(svc.spec.selector || {}).every(([k, v]) => labels[k] === v) && Object.keys(svc.spec.selector || {}).length,
            'kubernetes: the LoadBalancer Service must select the ott-edge pod');
        for (const port of [80, 443]) {
            const sp = (svc.spec.ports || []).find((p) => p.port === port);
            const tp = typeof sp?.targetPort === 'string' ? portByName[sp.targetPort] : sp?.targetPort;
            need(sp && tp === port, `kubernetes: Service port ${port} must reach the sidecar's port ${port}`);
        }
    }
    if (!problems.length) process.stdout.write(cm.data['config.yaml']);
}

// .dockerignore semantics: patterns in order, later ones win, "!" re-includes.
function dockerignoreMatcher(text) {
    const rules = text
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => {
            const neg = l.startsWith('!');
            let p = path.posix.normalize((neg ? l.slice(1) : l).replace(/^\/+/, '')).replace(/\/+$/, '');
            const re = new RegExp(
                '^' +
                    p
                        .split('**')
                        .map((s) => s.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
                        .join('.*') +
                    '(/.*)?$',
            );
            return { neg, re };
        });
    return (rel) => {
        let excluded = false;
        for (const r of rules) if (r.re.test(rel)) excluded = !r.neg;
        return excluded;
    };
}

function dockerStages(file) {
    const text = fs.readFileSync(file, 'utf8').replace(/\\\n/g, ' ');
    const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const stages = [];
    const globalArgs = {}; // ARG NAME=default before the first FROM: usable in FROM lines
    for (const l of lines) {
        const [ins, ...rest] = l.split(/\s+/);
        const arg = rest.join(' ');
        if (/^ARG$/i.test(ins) && !stages.length) {
            const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?/.exec(arg);
            if (m) globalArgs[m[1]] = m[2] ?? '';
        } else if (/^FROM$/i.test(ins)) {
            const from = rest[0].replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, n) => globalArgs[n] ?? '');
            stages.push({ from, name: /\bAS\s+(\S+)/i.exec(arg)?.[1], lines: [] });
        } else if (stages.length) stages.at(-1).lines.push({ ins: ins.toUpperCase(), arg });
    }
    return stages;
}

// Every COPY/ADD source (not --from) exists in the context root and is not .dockerignore'd.
function checkCopies(stages, root, ignoreFile, label) {
    const ignored = ignoreFile && fs.existsSync(ignoreFile) ? dockerignoreMatcher(fs.readFileSync(ignoreFile, 'utf8')) : () => false;
    for (const s of stages)
        for (const l of s.lines.filter((x) => x.ins === 'COPY' || x.ins === 'ADD')) {
            const parts = l.arg.split(/\s+/);
            if (parts.some((p) => p.startsWith('--from'))) continue;
            const srcs = parts.filter((p) => !p.startsWith('--')).slice(0, -1);
            for (const src of srcs) {
                const rel = path.posix.normalize(src).replace(/\/+$/, '');
                need(fs.existsSync(path.join(root, rel)), `${label}: COPY source ${src} does not exist`);
                need(!ignored(rel), `${label}: COPY source ${src} is excluded by .dockerignore`);
            }
        }
    return ignored;
}

function checkDockerfile(file, ignoreFile) {
    const root = process.cwd(); // the build context: run from the repository root
    const stages = dockerStages(file);
    if (!need(stages.length >= 2, 'Dockerfile: must be multi-stage (build + runtime)')) return;
    const build = stages[0];
    // The runtime image: the last stage, with the stages it is FROM merged in (its base is
    // then the first FROM of that chain that is not a stage).
    const chain = [stages.at(-1)];
    for (let s = chain[0]; ; ) {
        const parent = stages.find((x) => x.name && x.name === s.from);
        if (!parent || chain.includes(parent)) break;
        chain.unshift(parent);
        s = parent;
    }
    const rt = { from: chain[0].from, lines: chain.flatMap((s) => s.lines) };
    const runs = (s) => s.lines.filter((l) => l.ins === 'RUN').map((l) => l.arg).join(' && ');
    need(build.from === 'debian:bookworm-slim', `Dockerfile: build stage must be FROM debian:bookworm-slim (is ${build.from})`);
    need(/tools\/deps\.sh build\b/.test(runs(build)), 'Dockerfile: build stage must run tools/deps.sh build');
    need(/tools\/build\.sh\b|cmake --build \S+ --target ott-edge\b/.test(runs(build)), 'Dockerfile: build stage must build ott-edge (tools/build.sh or cmake --build … --target ott-edge)');
    need(rt.from === 'debian:bookworm-slim', `Dockerfile: runtime stage must be FROM debian:bookworm-slim (is ${rt.from})`);
    need(/deps\.sh runtime\b/.test(runs(rt)), 'Dockerfile: runtime stage must install with tools/deps.sh runtime');
    need(!/deps\.sh (build|test)\b/.test(runs(rt)), 'Dockerfile: runtime stage must not install build or test packages');
    const last = (ins) => rt.lines.filter((l) => l.ins === ins).at(-1)?.arg;
    need(/^(10001|10001:10001|ott-edge)$/.test(last('USER') || ''), `Dockerfile: runtime must run as uid 10001 (USER is ${last('USER')})`);
    need(/\/var\/lib\/ott-edge/.test(last('VOLUME') || ''), 'Dockerfile: VOLUME /var/lib/ott-edge');
    const exposed = rt.lines.filter((l) => l.ins === 'EXPOSE').flatMap((l) => l.arg.split(/\s+/)).map((p) => p.split('/')[0]);
    for (const p of ['80', '443', '9901']) need(exposed.includes(p), `Dockerfile: EXPOSE ${p}`);
    need(last('STOPSIGNAL') === 'SIGTERM', 'Dockerfile: STOPSIGNAL SIGTERM');
    need(/CMD\s+\[\s*"[^"]*ott-edge",\s*"healthcheck"/.test(last('HEALTHCHECK') || ''), 'Dockerfile: HEALTHCHECK CMD ["…/ott-edge", "healthcheck"]');
    need(!/\bcurl\b|\bwget\b/.test(last('HEALTHCHECK') || ''), 'Dockerfile: the HEALTHCHECK must not need curl or wget');
    need(/setcap\s+cap_net_bind_service=\+ep/.test(runs(rt)), 'Dockerfile: the binary needs cap_net_bind_service (setcap) to bind 80/443 as non-root');

    const ignored = checkCopies(stages, root, ignoreFile, 'Dockerfile');
    // Files the build needs must be in the context (CMake reads these).
    for (const rel of ['CMakeLists.txt', 'tests/CMakeLists.txt', 'tools/deps.sh', 'cmd/ott-edge/main.c'])
        need(!ignored(rel), `.dockerignore: excludes ${rel}, which the build needs`);
}

// deploy/single-container/Dockerfile: OTT's image with ott-edge as PID 1 supervising OTT.
function checkSingleDockerfile(file, ignoreFile) {
    const root = process.cwd(); // the build context: run from the repository root
    const stages = dockerStages(file);
    const last = stages.at(-1);
    const get = (ins) => last?.lines.filter((l) => l.ins === ins).at(-1)?.arg || '';
    need(/^dyc3\/opentogethertube(:|$)/.test(last?.from || ''), `single-container: final stage must be FROM dyc3/opentogethertube (is ${last?.from})`);
    need(/^\[\s*"[^"]*ott-edge",\s*"--"\s*\]$/.test(get('ENTRYPOINT')), `single-container: ENTRYPOINT must be ["…/ott-edge", "--"] (is ${get('ENTRYPOINT')})`);
    need(get('CMD').startsWith('['), 'single-container: CMD (the OTT command) in exec form');
    need(/OTT_EDGE_UPSTREAM=http:\/\/127\.0\.0\.1:8080/.test(last.lines.filter((l) => l.ins === 'ENV').map((l) => l.arg).join(' ')), 'single-container: ENV OTT_EDGE_UPSTREAM=http://127.0.0.1:8080');
    need(get('STOPSIGNAL') === 'SIGTERM', 'single-container: STOPSIGNAL SIGTERM');
    need(/\/var\/lib\/ott-edge/.test(get('VOLUME')), 'single-container: VOLUME /var/lib/ott-edge');
    need(/ott-edge",\s*"healthcheck"/.test(get('HEALTHCHECK')), 'single-container: HEALTHCHECK with ott-edge healthcheck');
    const buildRuns = stages[0].lines.map((l) => l.arg).join(' ');
    need(/tools\/deps\.sh build\b/.test(buildRuns) && /tools\/build\.sh\b|cmake --build \S+ --target ott-edge\b/.test(buildRuns),
        'single-container: build stage must run tools/deps.sh build and build ott-edge');
    // Its build stage repeats the main Dockerfile's word for word, so that building both
    // images compiles once (shared layers; tools/containers.sh builds both).
    const mainFile = path.join(root, 'Dockerfile');
    if (fs.existsSync(mainFile)) {
        const key = (st) => [st.from, ...st.lines.map((l) => `${l.ins} ${l.arg}`)].join('\n');
        need(key(dockerStages(mainFile)[0]) === key(stages[0]),
            'single-container: the build stage must repeat the build stage of ./Dockerfile exactly (shared build cache)');
    }
    checkCopies(stages, root, ignoreFile, 'single-container');
}

function checkSystemd(file) {
    const text = fs.readFileSync(file, 'utf8');
    const has = (re, what) => need(re.test(text), `systemd: ${path.basename(file)} needs ${what}`);
    has(/^(DynamicUser=yes|User=\S+)$/m, 'DynamicUser=yes or User=');
    has(/^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m, 'AmbientCapabilities=CAP_NET_BIND_SERVICE');
    has(/^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m, 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE');
    has(/^ProtectSystem=strict$/m, 'ProtectSystem=strict');
    has(/^StateDirectory=ott-edge$/m, 'StateDirectory=ott-edge');
    has(/^ExecReload=.*kill -HUP \$MAINPID$/m, 'ExecReload sending SIGHUP');
    has(/^NoNewPrivileges=yes$/m, 'NoNewPrivileges=yes');
    has(/^Type=notify$/m, 'Type=notify (ott-edge notifies; an upgrade hands MAINPID over)');
    has(/^NotifyAccess=all$/m, 'NotifyAccess=all (the upgraded process notifies)');
    const stop = Number(/^TimeoutStopSec=(\d+)/m.exec(text)?.[1]);
    need(stop > 30, `systemd: TimeoutStopSec (${stop}) must exceed shutdown.delay + shutdown.grace (30)`);
}

switch (mode) {
    case 'compose':
        checkCompose(target);
        break;
    case 'kubernetes':
        checkKubernetes(target);
        break;
    case 'dockerfile':
        checkDockerfile(target, extra);
        break;
    case 'single-dockerfile':
        checkSingleDockerfile(target, extra);
        break;
    case 'systemd':
        checkSystemd(target);
        break;
    default:
        console.error('usage: wiring.mjs compose FILE | kubernetes DIR | dockerfile FILE [.dockerignore] | systemd UNIT');
        process.exit(2);
}
if (problems.length) {
    for (const p of problems) console.error(p);
    process.exit(1);
}
