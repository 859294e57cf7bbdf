// The browser's microphone and speaker: whether they can be used, an input level meter, mic
// capture as 16 kHz Int16 chunks, and gapless playback of the 16 kHz Int16 chunks the server
// sends back.

export const TALK_RATE = 16000;
// What the capture posts per message: 20 ms at 16 kHz, i.e. two of the server's 10 ms frames
// (voiceloop/audio/browser.py's FRAME_SAMPLES is 160). Not the server's frame: a different name.
const BROWSER_CHUNK_SAMPLES = 320;
const JITTER_S = 0.08; // how far ahead playback starts, to absorb network jitter
const MAX_AHEAD_S = 0.6; // the most audio queued ahead of the speaker

// ── can this page use the microphone ──

// Browsers only offer the microphone to secure pages: https, or http on localhost.
export function microphoneProblem() {
  if (!window.isSecureContext) {
    return "The microphone needs a secure page: open this over https, or as http://localhost " +
      "(or allow this address under chrome://flags/#unsafely-treat-insecure-origin-as-secure).";
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return "This browser cannot capture audio (no navigator.mediaDevices.getUserMedia).";
  }
  return null;
}

export function describeMediaError(error) {
  const name = error && error.name;
  if (name === "NotAllowedError" || name === "SecurityError") return "microphone permission was refused";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "no microphone found";
  if (name === "NotReadableError") return "the microphone is in use by another program";
  return String((error && error.message) || error);
}

// An input level meter: without one, a muted or wrong microphone only shows up as an empty
// transcript.
export function levelMeter(stream, meterElement) {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let frame = 0;
  const tick = () => {
    analyser.getFloatTimeDomainData(samples);
    let peak = 0;
    for (const sample of samples) peak = Math.max(peak, Math.abs(sample));
    meterElement.value = peak;
    frame = requestAnimationFrame(tick);
  };
  tick();
  return {
    close() {
      cancelAnimationFrame(frame);
      meterElement.value = 0;
      context.close();
    },
  };
}

// ── capture ──

// Runs on the audio thread: converts whatever rate the context runs at to 16 kHz Int16 and
// posts BROWSER_CHUNK_SAMPLES at a time. Loaded from a Blob URL built from the constants
// above, so the worklet and the page cannot disagree on the rate or the chunk size.
const CAPTURE_WORKLET = `
class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / ${TALK_RATE};
    this.position = 0; // read position in the current block; -1 < position means "last block's end"
    this.last = 0;
    this.chunk = new Int16Array(${BROWSER_CHUNK_SAMPLES});
    this.filled = 0;
  }
  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input || !input.length) return true;
    // Linear interpolation between neighbours; index -1 is the previous block's last sample.
    // With a 16 kHz context the step is 1 and this is a plain copy, one sample behind.
    while (this.position < input.length - 1) {
      const i = Math.floor(this.position);
      const f = this.position - i;
      const a = i < 0 ? this.last : input[i];
      const sample = a + (input[i + 1] - a) * f;
      const clipped = Math.max(-1, Math.min(1, sample));
      this.chunk[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
      if (this.filled === this.chunk.length) {
        this.port.postMessage(this.chunk.buffer, [this.chunk.buffer]);
        this.chunk = new Int16Array(${BROWSER_CHUNK_SAMPLES});
        this.filled = 0;
      }
      this.position += this.step;
    }
    this.position -= input.length;
    this.last = input[input.length - 1];
    return true;
  }
}
registerProcessor("voiceloop-capture", CaptureProcessor);
`;

// A 16 kHz context makes the browser resample the mic and the reply for us. Some browsers
// refuse a rate different from the device's; the worklet then resamples instead.
export function makeTalkContext() {
  try {
    return new AudioContext({ sampleRate: TALK_RATE, latencyHint: "interactive" });
  } catch (_) {
    return new AudioContext({ latencyHint: "interactive" });
  }
}

// Calls onChunk(Int16Array) with the mic's audio at 16 kHz; returns {close()}.
export async function startCapture(context, stream, onChunk) {
  const source = context.createMediaStreamSource(stream);
  if (context.audioWorklet && window.AudioWorkletNode) {
    const url = URL.createObjectURL(new Blob([CAPTURE_WORKLET], { type: "application/javascript" }));
    try {
      await context.audioWorklet.addModule(url);
    } finally {
      URL.revokeObjectURL(url);
    }
    const node = new AudioWorkletNode(context, "voiceloop-capture", { numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1 });
    node.port.onmessage = (event) => onChunk(new Int16Array(event.data));
    source.connect(node);
    return { close() { source.disconnect(); node.port.onmessage = null; } };
  }
  return scriptProcessorCapture(context, source, onChunk);
}

// Fallback for browsers without AudioWorklet: runs on the main thread, so chunks are larger.
function scriptProcessorCapture(context, source, onChunk) {
  const node = context.createScriptProcessor(2048, 1, 1);
  const step = context.sampleRate / TALK_RATE;
  let position = 0;
  node.onaudioprocess = (event) => {
    const input = event.inputBuffer.getChannelData(0);
    const out = [];
    for (; position < input.length; position += step) {
      const sample = Math.max(-1, Math.min(1, input[Math.floor(position)]));
      out.push(sample < 0 ? sample * 0x8000 : sample * 0x7fff);
    }
    position -= input.length;
    onChunk(Int16Array.from(out));
  };
  source.connect(node);
  // A ScriptProcessor only runs while connected to the destination; it outputs silence.
  node.connect(context.destination);
  return { close() { source.disconnect(); node.disconnect(); node.onaudioprocess = null; } };
}

// ── playback ──

// Plays 16 kHz Int16 chunks back to back on `context`. Schedules each chunk right after the
// previous one; after an underrun (nothing queued), restarts JITTER_S ahead so the next few
// chunks can arrive before they are needed.
export class PcmPlayer {
  constructor(context) {
    this.context = context;
    this.sources = new Set();
    this.playHead = 0;
  }

  play(samples) {
    const context = this.context;
    const buffer = context.createBuffer(1, samples.length, TALK_RATE);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
    const now = context.currentTime;
    if (this.playHead < now + 0.01) this.playHead = now + JITTER_S;
    // The server paces audio by our own mic clock, so the queue only grows after a network
    // stall delivers a burst; drop that backlog rather than answer ever later.
    if (this.playHead - now > MAX_AHEAD_S) return;
    const source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(context.destination);
    source.start(this.playHead);
    this.playHead += buffer.duration;
    this.sources.add(source);
    source.addEventListener("ended", () => this.sources.delete(source));
  }

  // Silences what plays now and what is scheduled ahead.
  flush() {
    for (const source of this.sources) {
      try {
        source.stop();
      } catch (_) { /* already stopped */ }
    }
    this.sources.clear();
    this.playHead = 0;
  }
}
