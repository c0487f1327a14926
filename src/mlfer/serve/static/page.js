// mlfer serve's page: send a photo to POST /predict and draw its faces and probabilities.
"use strict";

const EXPRESSIONS = ["surprise", "fear", "disgust", "happiness", "sadness", "anger"];
const COLOURS = ["#2563eb", "#db2777", "#ea580c", "#0d9488", "#7c3aed", "#ca8a04"];
const $ = (id) => document.getElementById(id);

const query = new URLSearchParams(location.search);
if (query.get("token")) sessionStorage.setItem("mlfer-token", query.get("token"));
$("token").value = sessionStorage.getItem("mlfer-token") || "";
$("token").addEventListener("change", () => sessionStorage.setItem("mlfer-token", $("token").value));

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function send(blob, name) {
  const options = new URLSearchParams();
  if ($("thresholds").value) options.set("thresholds", $("thresholds").value);
  if ($("min-score").value) options.set("min_score", $("min-score").value);
  const form = new FormData();
  form.append("file", blob, name);
  const headers = $("token").value ? { Authorization: "Bearer " + $("token").value } : {};
  say("Looking for faces in " + name + "...");
  let response;
  try {
    response = await fetch("predict?" + options, { method: "POST", body: form, headers });
  } catch (error) {
    say("The server did not answer (" + error + ").", true);
    return;
  }
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (response.status === 401) {
    $("token").closest("details").open = true;
    $("token").focus();
    say("This server needs a token: enter it under Options, then choose the photo again.", true);
    return;
  }
  if (!response.ok) {
    say(body.error || "The server refused the photo (" + response.status + ").", true);
    return;
  }
  show(blob, body);
}

function show(blob, rows) {
  const faces = rows.filter((row) => row.face_detected);
  say(faces.length ? faces.length + (faces.length === 1 ? " face found." : " faces found.") : "No face found in this photo.");
  const image = new Image();
  image.onload = () => {
    draw(image, faces);
    URL.revokeObjectURL(image.src);
  };
  image.src = URL.createObjectURL(blob);
  const list = $("faces");
  list.replaceChildren(...faces.map(card));
  $("result").hidden = false;
}

function draw(image, faces) {
  const canvas = $("picture");
  const scale = Math.min(1, 1200 / image.naturalWidth);
  canvas.width = Math.round(image.naturalWidth * scale);
  canvas.height = Math.round(image.naturalHeight * scale);
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0, canvas.width, canvas.height);
  const line = Math.max(2, canvas.width / 250);
  faces.forEach((face, index) => {
    const colour = COLOURS[index % COLOURS.length];
    const [x, y, w, h] = [(face.x + 0.5) * scale, (face.y + 0.5) * scale, face.w * scale, face.h * scale];
    context.lineWidth = line;
    context.strokeStyle = colour;
    context.strokeRect(x, y, w, h);
    const label = "face " + face.face_id;
    context.font = "600 " + Math.round(line * 6) + "px system-ui, sans-serif";
    const height = line * 8;
    context.fillStyle = colour;
    context.fillRect(x - line / 2, Math.max(0, y - height), context.measureText(label).width + line * 4, height);
    context.fillStyle = "#fff";
    context.fillText(label, x + line * 1.5, Math.max(0, y - height) + height - line * 2);
  });
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function card(face, index) {
  const node = element("article", "face");
  node.style.setProperty("--colour", COLOURS[index % COLOURS.length]);
  node.append(element("h2", "", "Face " + face.face_id + " (score " + face.score.toFixed(2) + ")"));
  const predicted = face.predicted ? face.predicted.split("|") : [];
  node.append(element("p", "predicted", predicted.length ? predicted.join(" + ") : "no expression"));
  node.append(element("p", "compound", face.compound ? face.compound : "not a compound expression"));
  for (const name of EXPRESSIONS) {
    const bar = element("div", predicted.includes(name) ? "bar on" : "bar");
    bar.dataset.expression = name;
    const track = element("div", "track");
    const fill = element("div", "fill");
    fill.style.width = (100 * face[name]).toFixed(1) + "%";
    track.append(fill);
    bar.append(element("span", "name", name), track, element("span", "value", face[name].toFixed(2)));
    node.append(bar);
  }
  return node;
}

$("file").addEventListener("change", () => {
  const file = $("file").files[0];
  if (file) send(file, file.name);
});

const drop = $("drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) send(file, file.name);
});

// The webcam, where the browser allows it (a secure context: https or this machine).
if (window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
  $("camera-controls").hidden = false;
  $("camera").addEventListener("click", async () => {
    try {
      $("video").srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
    } catch (error) {
      say("The webcam is not available (" + error.name + ").", true);
      return;
    }
    $("video").hidden = false;
    $("capture").hidden = false;
  });
  $("capture").addEventListener("click", () => {
    const video = $("video");
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob((blob) => send(blob, "webcam.jpg"), "image/jpeg", 0.92);
  });
}
