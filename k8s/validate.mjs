// Validates rendered Kubernetes manifests offline against the Kubernetes API
// schemas compiled into the `kubernetes-models` npm package (ajv validators
// generated from the API's OpenAPI definitions: types, enums, required
// fields), then checks what herd's manifests rely on and a schema check
// cannot see (an unknown or misspelled field passes the schemas, as the API
// server would silently drop it): the Indexed Job, the podFailurePolicy,
// the headless Service, the world size agreeing with the Job's size.
//
//   kubectl kustomize k8s/base | node validate.mjs [--herd] [FILE]
//
// Run from a folder where `npm install kubernetes-models yaml` was done
// (tests/system/k8s.sh does this). Exit status 1 names every failed check.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const args = process.argv.slice(2);
const herdChecks = args.includes("--herd");
const file = args.find((a) => a !== "--herd");
const input = readFileSync(file ?? 0, "utf8");
const docs = parseAllDocuments(input).map((d) => d.toJS()).filter(Boolean);
let passed = 0, failed = 0;

function report(ok, what, why) {
  ok ? passed++ : failed++;
  console.log(ok ? `ok   ${what}` : `FAIL ${what}: ${why}`);
}

async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/")
    ? apiVersion.split("/") : [null, apiVersion];
  const path = group ? `kubernetes-models/${group}/${version}/${kind}`
                     : `kubernetes-models/${version}/${kind}`;
  return (await import(path))[kind];
}

for (const doc of docs) {
  const what = `${doc.apiVersion} ${doc.kind}/${doc.metadata?.name}`;
  try {
    if (!doc.apiVersion || !doc.kind) throw new Error("no apiVersion/kind");
    const Model = await modelFor(doc.apiVersion, doc.kind);
    new Model(doc).validate();
    report(true, what);
  } catch (err) {
    report(false, what, err.message ?? String(err));
  }
}

function find(kind, name) {
  return docs.find((d) => d.kind === kind && (!name || d.metadata?.name === name));
}

function check(what, test) {
  try {
    const why = test();
    report(!why, `herd: ${what}`, why);
  } catch (err) {
    report(false, `herd: ${what}`, err.message ?? String(err));
  }
}

if (herdChecks) {
  const job = find("Job");
  const config = find("ConfigMap");
  const spec = job?.spec ?? {};
  const pod = spec.template?.spec ?? {};
  const worker = pod.containers?.find((c) => c.name === "herd-train");
  check("worker Job is Indexed", () =>
    spec.completionMode === "Indexed" ? null : "completionMode is not Indexed");
  check("world size = completions = parallelism", () => {
    const world = Number(config?.data?.HERD_WORLD_SIZE);
    return world === spec.completions && world === spec.parallelism ? null
      : `HERD_WORLD_SIZE ${world}, completions ${spec.completions}, ` +
        `parallelism ${spec.parallelism}`;
  });
  check("podFailurePolicy ignores disruptions", () =>
    spec.podFailurePolicy?.rules?.some((r) => r.action === "Ignore" &&
      r.onPodConditions?.some((c) => c.type === "DisruptionTarget"))
      ? null : "no Ignore rule on DisruptionTarget");
  check("podFailurePolicy fails the Job on exit code 2", () =>
    spec.podFailurePolicy?.rules?.some((r) => r.action === "FailJob" &&
      r.onExitCodes?.values?.includes(2)) ? null : "no FailJob rule for 2");
  check("restartPolicy Never (podFailurePolicy needs it)", () =>
    pod.restartPolicy === "Never" ? null : `restartPolicy ${pod.restartPolicy}`);
  check("subdomain names a headless Service", () => {
    const svc = find("Service", pod.subdomain);
    return svc?.spec?.clusterIP === "None" ? null
      : `no headless Service '${pod.subdomain}'`;
  });
  check("HERD_K8S_SERVICE is the subdomain", () =>
    config?.data?.HERD_K8S_SERVICE === pod.subdomain ? null
      : `HERD_K8S_SERVICE ${config?.data?.HERD_K8S_SERVICE}`);
  check("workers get the config and the token", () => {
    const from = (worker?.envFrom ?? []).map(
      (e) => e.configMapRef?.name ?? e.secretRef?.name);
    return from.includes("herd-config") && from.includes("herd-token") ? null
      : `envFrom ${from}`;
  });
  check("coordinator Service and Deployment", () =>
    find("Service", "herd-coord") && find("Deployment", "herd-coord") ? null
      : "missing");
  check("checkpoint PVC is ReadWriteMany and mounted", () => {
    const pvc = find("PersistentVolumeClaim");
    const claimed = (pod.volumes ?? []).some(
      (v) => v.persistentVolumeClaim?.claimName === pvc?.metadata?.name);
    return pvc?.spec?.accessModes?.includes("ReadWriteMany") && claimed ? null
      : "no ReadWriteMany PVC mounted by the workers";
  });
}

if (docs.length === 0)
  report(false, "input", "no documents");
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
