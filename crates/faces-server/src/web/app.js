// The faces web page: talks to the JSON API with the key kept in this tab's
// sessionStorage. No build step, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem("faces-key") || "";

function status(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function api(method, path, body, extraHeaders) {
  const headers = Object.assign({ Authorization: "Bearer " + key }, extraHeaders || {});
  const response = await fetch(path, { method, headers, body });
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    throw new Error((data && data.error) || response.status + " " + response.statusText);
  }
  return data;
}

async function login(candidate) {
  key = candidate;
  try {
    const ready = await api("GET", "/ready");
    sessionStorage.setItem("faces-key", key);
    $("login-panel").hidden = true;
    $("app").hidden = false;
    $("logout").hidden = false;
    $("who").textContent = "gallery of " + ready.subjects + " people, " + ready.model;
    status("Logged in.");
  } catch (e) {
    key = "";
    sessionStorage.removeItem("faces-key");
    status("Log-in failed: " + e.message, true);
  }
}

function showTab(name) {
  for (const button of document.querySelectorAll("nav button")) {
    button.setAttribute("aria-pressed", String(button.dataset.tab === name));
  }
  for (const tab of document.querySelectorAll(".tab")) {
    tab.hidden = tab.id !== name;
  }
  if (name === "people") loadPeople();
  if (name === "audit") loadAudit();
}

function drawFaces(file, faces) {
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    const canvas = $("identify-canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const g = canvas.getContext("2d");
    g.drawImage(img, 0, 0);
    const line = Math.max(2, Math.round(img.naturalWidth / 300));
    g.lineWidth = line;
    g.font = Math.max(14, line * 8) + "px system-ui, sans-serif";
    for (const f of faces) {
      const known = f.name !== "unknown";
      g.strokeStyle = g.fillStyle = known ? "#00c000" : "#e03c3c";
      g.strokeRect(f.box.x, f.box.y, f.box.width, f.box.height);
      const label = f.name + (f.similarity != null ? " " + f.similarity.toFixed(2) : "");
      g.fillText(label, f.box.x, Math.max(line * 8, f.box.y - line * 2));
    }
    canvas.dataset.faces = String(faces.length);
    URL.revokeObjectURL(url);
  };
  img.src = url;
}

async function identify(event) {
  event.preventDefault();
  const file = $("identify-photo").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("image", file, file.name);
  const purpose = $("identify-purpose").value.trim();
  status("Identifying...");
  try {
    const result = await api("POST", "/v1/identify", form, purpose ? { "X-Purpose": purpose } : {});
    drawFaces(file, result.faces);
    const list = $("identify-names");
    list.replaceChildren(...result.faces.map((f, i) => {
      const item = document.createElement("li");
      const sim = f.similarity != null ? f.similarity.toFixed(3) : "n/a";
      const conf = f.confidence != null ? ", confidence " + f.confidence.toFixed(2) : "";
      item.textContent = "Face " + (i + 1) + ": " + f.name + " (similarity " + sim + conf + ")";
      item.className = "face-name";
      return item;
    }));
    status(result.faces.length + " face(s) found.");
  } catch (e) {
    status("Identify failed: " + e.message, true);
  }
}

async function enrol(event) {
  event.preventDefault();
  const name = $("enrol-name").value.trim();
  const consent = {
    subject: name,
    basis: $("enrol-basis").value,
    purpose: $("enrol-purpose").value.trim(),
    evidence: $("enrol-evidence").value.trim() || null,
    expires: $("enrol-expires").value || null,
  };
  status("Recording consent...");
  try {
    await api("POST", "/v1/consent", JSON.stringify(consent), { "Content-Type": "application/json" });
    const form = new FormData();
    form.append("name", name);
    for (const file of $("enrol-photos").files) form.append("image", file, file.name);
    status("Enrolling...");
    const result = await api("POST", "/v1/subjects", form);
    status("Enrolled " + result.subject + ": " + result.enrolled + " photo(s) with a face, " + result.no_face + " without.");
    $("enrol-form").reset();
  } catch (e) {
    status("Enrolment failed: " + e.message, true);
  }
}

async function loadPeople() {
  try {
    const { subjects } = await api("GET", "/v1/subjects");
    $("people-rows").replaceChildren(...subjects.map((s) => {
      const row = document.createElement("tr");
      for (const text of [s.name, String(s.templates), s.created.slice(0, 10)]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      const cell = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Erase";
      button.setAttribute("aria-label", "Erase " + s.name + " completely");
      button.onclick = () => erase(s.name);
      cell.append(button);
      row.append(cell);
      return row;
    }));
    status(subjects.length + " people enrolled.");
  } catch (e) {
    status("Could not list people: " + e.message, true);
  }
}

async function erase(name) {
  if (!confirm("Erase " + name + " completely? Their templates and records are removed for good.")) return;
  try {
    const r = await api("DELETE", "/v1/subjects/" + encodeURIComponent(name));
    await loadPeople();
    status("Erased " + r.erased + ": " + r.templates + " template(s).");
  } catch (e) {
    status("Erase failed: " + e.message, true);
  }
}

async function loadAudit() {
  try {
    const { entries } = await api("GET", "/v1/audit");
    $("audit-rows").replaceChildren(...entries.slice().reverse().map((e) => {
      const row = document.createElement("tr");
      const counts = Object.entries(e.counts || {}).map(([k, v]) => k + " " + v).join(", ");
      for (const text of [String(e.seq), e.time, e.actor, e.action, e.purpose || "", counts]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }));
    status(entries.length + " audit entries.");
  } catch (e) {
    status("Could not read the audit trail: " + e.message, true);
  }
}

$("login").addEventListener("submit", (e) => { e.preventDefault(); login($("key").value.trim()); });
$("logout").addEventListener("click", () => { sessionStorage.removeItem("faces-key"); location.reload(); });
$("identify-form").addEventListener("submit", identify);
$("enrol-form").addEventListener("submit", enrol);
for (const button of document.querySelectorAll("nav button")) {
  button.addEventListener("click", () => showTab(button.dataset.tab));
}
if (key) login(key);
