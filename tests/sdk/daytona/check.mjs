// Runs the official Daytona TypeScript SDK against tests/emulators/daytona.py.
//
//   DAYTONA_API_URL=http://127.0.0.1:PORT/api DAYTONA_API_KEY=KEY node check.mjs
//
// Every step prints one line; the first mismatch prints "FAIL: ..." and exits 1.
import { randomBytes } from 'node:crypto';
import { Daytona } from '@daytonaio/sdk';

const LABEL = { suite: 'sdk-check' };

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

function expect(cond, msg) {
  if (!cond) fail(msg);
}

function same(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(`${what}: expected ${e}, got ${a}`);
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
  } catch (err) {
    fail(`${name}: ${err?.stack || err}`);
  }
  console.log(`ok   ${name} (${Date.now() - t0} ms)`);
}

async function collect(iterable) {
  const out = [];
  for await (const item of iterable) out.push(item);
  return out;
}

const watchdog = setTimeout(() => fail('timed out after 170 s'), 170_000);

for (const v of ['DAYTONA_API_URL', 'DAYTONA_API_KEY']) {
  expect(process.env[v], `${v} is not set`);
}

const daytona = new Daytona();
let sb;
let img;

await step('create from snapshot', async () => {
  sb = await daytona.create({
    snapshot: 'daytonaio/sandbox:0.4.3',
    labels: { ...LABEL },
    envVars: { FOO: 'bar' },
    name: 'sdk-check-snap',
  });
  same(sb.state, 'started', 'state after create');
  same(sb.name, 'sdk-check-snap', 'name');
  expect(sb.toolboxProxyUrl?.endsWith('/toolbox'), `toolboxProxyUrl ${sb.toolboxProxyUrl}`);
});

await step('create from image', async () => {
  img = await daytona.create({ image: 'debian:12-slim' }, { timeout: 60 });
  same(img.state, 'started', 'image sandbox state');
  expect(img.buildInfo?.dockerfileContent?.includes('FROM debian:12-slim'),
    `buildInfo ${JSON.stringify(img.buildInfo)}`);
});

await step('get by id and by name', async () => {
  const byId = await daytona.get(sb.id);
  same(byId.id, sb.id, 'get by id');
  same(byId.env, { FOO: 'bar' }, 'env');
  const byName = await daytona.get('sdk-check-snap');
  same(byName.id, sb.id, 'get by name');
});

await step('list with label filter and paging', async () => {
  const labelled = await collect(daytona.list({ labels: LABEL }));
  same(labelled.map((s) => s.id), [sb.id], 'label-filtered list');
  const paged = await collect(daytona.list({ limit: 1 }));
  same(paged.map((s) => s.id).sort(), [sb.id, img.id].sort(), 'list paged by 1');
});

const payload = randomBytes(300_000);
await step('upload file', async () => {
  await sb.fs.uploadFile(payload, '/home/daytona/data/blob.bin');
});

await step('list files', async () => {
  const files = await sb.fs.listFiles('/home/daytona/data');
  const blob = files.find((f) => f.name === 'blob.bin');
  expect(blob, `blob.bin not listed: ${JSON.stringify(files)}`);
  same(blob.size, payload.length, 'listed size');
  same(blob.isDir, false, 'isDir');
  const info = await sb.fs.getFileDetails('/home/daytona/data');
  same(info.isDir, true, 'details of the directory');
});

await step('download file', async () => {
  const back = await sb.fs.downloadFile('/home/daytona/data/blob.bin');
  expect(Buffer.isBuffer(back), 'download did not return a Buffer');
  expect(Buffer.compare(back, payload) === 0,
    `downloaded ${back.length} bytes differ from the ${payload.length} uploaded`);
});

await step('executeCommand', async () => {
  const r = await sb.process.executeCommand('echo $FOO; echo to-stderr >&2; exit 3');
  same(r.exitCode, 3, 'exit code');
  same(r.result, 'bar\nto-stderr\n', 'combined output');
  const r2 = await sb.process.executeCommand('pwd; echo $X', '/home/daytona/data', { X: 'y' });
  same(r2.result, '/home/daytona/data\ny\n', 'cwd and env');
  const r3 = await sb.process.executeCommand('cat data/blob.bin | wc -c');
  same(r3.result.trim(), String(payload.length), 'commands see uploaded files');
});

await step('session: async command, streamed and stored logs', async () => {
  await sb.process.createSession('s1');
  const started = await sb.process.executeSessionCommand('s1', {
    command: 'echo one; sleep 1; echo two >&2; echo three; (exit 5)',
    runAsync: true,
  });
  expect(started.cmdId, 'no cmdId from async exec');
  same(started.exitCode ?? null, null, 'exit code of a running command');
  let out = '';
  let err = '';
  await sb.process.getSessionCommandLogs('s1', started.cmdId,
    (chunk) => { out += chunk; }, (chunk) => { err += chunk; });
  same(out, 'one\nthree\n', 'streamed stdout');
  same(err, 'two\n', 'streamed stderr');
  const cmd = await sb.process.getSessionCommand('s1', started.cmdId);
  same(cmd.exitCode, 5, 'command exit code');
  const logs = await sb.process.getSessionCommandLogs('s1', started.cmdId);
  same([logs.stdout, logs.stderr], ['one\nthree\n', 'two\n'], 'stored logs');
});

await step('session: sync command and delete', async () => {
  const r = await sb.process.executeSessionCommand('s1', { command: 'echo sync; echo e >&2' });
  same([r.exitCode, r.stdout, r.stderr], [0, 'sync\n', 'e\n'], 'sync exec');
  const session = await sb.process.getSession('s1');
  same(session.commands.length, 2, 'commands in session');
  await sb.process.deleteSession('s1');
  const sessions = await sb.process.listSessions();
  same(sessions.length, 0, 'sessions after delete');
});

await step('stop and start', async () => {
  await sb.stop();
  same(sb.state, 'stopped', 'state after stop');
  await sb.start();
  same(sb.state, 'started', 'state after start');
  const r = await sb.process.executeCommand('cat /home/daytona/data/blob.bin | wc -c');
  same(r.result.trim(), String(payload.length), 'files survive stop/start');
});

await step('archive and restore', async () => {
  await sb.stop();
  await sb.archive();
  let state = sb.state;
  for (let i = 0; i < 100 && state !== 'archived'; i++) {
    expect(['archiving', 'archived'].includes(state), `state after archive: ${state}`);
    await new Promise((r) => setTimeout(r, 100));
    state = (await daytona.get(sb.id)).state;
  }
  same(state, 'archived', 'state after archiving');
  await sb.start();
  same(sb.state, 'started', 'state after start from archive');
});

await step('delete', async () => {
  await sb.delete(60, true);
  await img.delete(60, true);
  let status;
  try {
    await daytona.get(sb.id);
  } catch (e) {
    status = e.statusCode;
  }
  same(status, 404, 'get after delete');
  const left = await collect(daytona.list());
  same(left.length, 0, 'sandboxes left');
});

clearTimeout(watchdog);
console.log('all SDK checks passed');
process.exit(0);
