// Runs the Cloud Storage emulator that ships inside firebase-tools, in this process and without
// Java: `firebase emulators:start` insists on Java 21 and on downloading a security-rules JAR, but the
// GCS JSON API routes never consult security rules, so the rules runtime is replaced by no-ops.
//
// Usage: node test/servers/gcs-emulator.cjs [port]   (default 9199, host 127.0.0.1)
//
// Additions in front of the emulator's own routes, all following the public JSON API:
//  - requests under /storage/v1/... are served like the bare paths, so the SDK can be pointed at the
//    emulator with `apiEndpoint` (the emulator only routes some /storage/v1 paths itself);
//  - objects.compose (POST /b/:bucket/o/:object/compose), which the emulator lacks and the
//    GoogleCloudStorage driver uses to assemble multipart uploads;
//  - buckets.get (GET /b/:bucket) and buckets.insert (POST /b?project=...), which it lacks too (it
//    lists buckets, and creates one silently on the first request under /b/:bucket/): a missing
//    bucket answers 404 "The specified bucket does not exist.", a second insert 409, as GCS does, so
//    the driver's bucket creation under storage managementState Managed can be tested. (Object
//    requests still create their bucket silently: the emulator's behaviour, left as it is.)
//
// It reaches into firebase-tools' internal modules, so firebase-tools must stay pinned (15.34.2).
'use strict';
/* global require */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS script: it patches firebase-tools' CommonJS modules */

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const port = Number(process.argv[2] || 9199);
const host = '127.0.0.1';

// The emulator keeps object bytes in `${os.tmpdir()}/firebase/storage/blobs`, one directory for
// every instance on the machine, and deletes it when an instance starts over or stops: a test that
// ran an emulator of its own on another port took the shared one's files away, and it crashed on
// the next write (ENOENT). Each instance gets a temp dir of its own, removed when it exits.
const ownTmp = fs.mkdtempSync(path.join(os.tmpdir(), `quayfleet-gcs-${port}-`));
process.env.TMPDIR = ownTmp;
process.on('exit', () => fs.rmSync(ownTmp, { recursive: true, force: true }));

const firebaseDir = path.dirname(require.resolve('firebase-tools/package.json'));
const internal = (relative) => require(path.join(firebaseDir, 'lib', relative));
const express = require(require.resolve('express', { paths: [firebaseDir] }));
const { StorageEmulator } = internal('emulator/storage');
const { EmulatorRegistry } = internal('emulator/registry');
const server = internal('emulator/storage/server');
const { NotFoundError } = internal('emulator/storage/errors');
const { CloudStorageBucketMetadata, CloudStorageObjectMetadata } = internal('emulator/storage/metadata');

function notFound(res, bucket, name) {
  const message = `No such object: ${bucket}/${name}`;
  res.status(404).json({ error: { code: 404, message, errors: [{ message, domain: 'global', reason: 'notFound' }] } });
}

// objects.compose: concatenates the source objects, in order, into the destination object.
function composeRoute(emulator) {
  return async (req, res, next) => {
    try {
      const { bucket, object } = req.params;
      const layer = emulator.adminStorageLayer;
      const parts = [];
      for (const source of req.body.sourceObjects || []) {
        try {
          parts.push((await layer.getObject({ bucketId: bucket, decodedObjectId: source.name })).data);
        } catch (error) {
          if (error instanceof NotFoundError) return notFound(res, bucket, source.name);
          throw error;
        }
      }
      const destination = req.body.destination || {};
      const upload = emulator.uploadService.multipartUpload({
        bucketId: bucket,
        objectId: object,
        metadata: { contentType: destination.contentType, metadata: destination.metadata },
        dataRaw: Buffer.concat(parts),
        authorization: 'Bearer owner',
      });
      res.json(new CloudStorageObjectMetadata(await layer.uploadObject(upload)));
    } catch (error) {
      next(error);
    }
  };
}

function gcsError(res, code, reason, message) {
  res.status(code).json({ error: { code, message, errors: [{ message, domain: 'global', reason }] } });
}

// buckets.get: the bucket resource, or 404 when it does not exist.
function getBucketRoute(emulator) {
  return async (req, res) => {
    const bucket = (await emulator.adminStorageLayer.listBuckets()).find((b) => b.name === req.params.bucket);
    if (!bucket) return gcsError(res, 404, 'notFound', 'The specified bucket does not exist.');
    res.json(bucket);
  };
}

// buckets.insert: creates the bucket named in the body, with its location and default KMS key.
function insertBucketRoute(emulator) {
  return async (req, res) => {
    const name = req.body && req.body.name;
    if (!req.query.project) return gcsError(res, 400, 'required', 'Required parameter: project');
    if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/.test(name)) return gcsError(res, 400, 'invalid', 'Invalid bucket name: ' + JSON.stringify(name));
    const layer = emulator.adminStorageLayer;
    if ((await layer.listBuckets()).some((b) => b.name === name)) {
      return gcsError(res, 409, 'conflict', 'Your previous request to create the named bucket succeeded and you already own it.');
    }
    const bucket = new CloudStorageBucketMetadata(name);
    if (req.body.location) bucket.location = String(req.body.location).toUpperCase();
    if (req.body.storageClass) bucket.storageClass = req.body.storageClass;
    if (req.body.encryption && req.body.encryption.defaultKmsKeyName) bucket.encryption = { defaultKmsKeyName: req.body.encryption.defaultKmsKeyName };
    layer._buckets.set(name, bucket);
    res.json(bucket);
  };
}

const createEmulatorApp = server.createApp;
server.createApp = async (projectId, emulator) => {
  const emulatorApp = await createEmulatorApp(projectId, emulator);
  const app = express();
  app.use((req, _res, next) => {
    if (/^\/storage\/v1\/b(\/|\?|$)/.test(req.url)) req.url = req.url.slice('/storage/v1'.length);
    next();
  });
  app.post('/b/:bucket/o/:object/compose', express.json(), composeRoute(emulator));
  app.get('/b/:bucket', getBucketRoute(emulator));
  app.post('/b', express.json(), insertBucketRoute(emulator));
  app.use(emulatorApp);
  return app;
};

const emulator = new StorageEmulator({ projectId: 'demo-quayfleet', host, port, rules: { name: 'none', content: '' }, auto_download: false });
const noRules = { start: async () => {}, stop: async () => {}, getRuleset: () => undefined };
emulator._rulesRuntime.start = async () => {};
emulator._rulesRuntime.stop = async () => {};
emulator._rulesManager = noRules;
emulator.createRulesManager = () => noRules;

EmulatorRegistry.start(emulator).then(
  () => console.log(`gcs emulator listening on http://${host}:${port}`),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

// Stopping deletes the emulator's temp files before exiting.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    emulator.stop().finally(() => process.exit(0));
  });
}
