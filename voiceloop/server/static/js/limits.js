// The server's limits (from /info), shared by the tabs that use them: the files tab refuses
// oversized files before uploading them, the record tab stops at the longest audio accepted.
// One writer (applyLimits), read through serverLimits() or told through onLimitsChange().

let current = Object.freeze({ maxUploadMb: null, maxAudioS: null, formats: null });
const listeners = [];

export function serverLimits() {
  return current;
}

export function onLimitsChange(listener) {
  listeners.push(listener);
}

export function applyLimits(info) {
  const limit = info.limits || {};
  current = Object.freeze({
    maxUploadMb: limit.max_upload_mb || null,
    maxAudioS: limit.max_audio_s || null,
    formats: limit.formats || null,
  });
  for (const listener of listeners) listener(current);
}
