// Opens a watch page in Debian's headless Chromium and reports, as one JSON line, whether its
// video plays: how far it advanced in the given seconds, how often it stalled after starting,
// whether two screenshots of the video element taken that far apart differ, and the picture
// size. Usage: node watch_check.mjs URL SECONDS (CHROMIUM overrides the browser's path).
import puppeteer from "puppeteer-core";

const [url, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 10);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
});
const logs = [];
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  page.on("console", (m) => logs.push(m.text()));
  page.on("pageerror", (e) => logs.push("pageerror: " + e.message));
  const began = Date.now();
  await page.goto(url);
  await page.waitForFunction(
    () => {
      const v = document.querySelector("video");
      return v && v.currentTime > 0.5;
    },
    { timeout: 40000 },
  );
  const startupMs = Date.now() - began;
  await page.evaluate(() => {
    window.__stalls = 0;
    document.querySelector("video").addEventListener("waiting", () => window.__stalls++);
  });
  const video = await page.$("video");
  const shot1 = await video.screenshot();
  const t1 = await page.evaluate(() => document.querySelector("video").currentTime);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const shot2 = await video.screenshot();
  const state = await page.evaluate(() => {
    const v = document.querySelector("video");
    return {
      t: v.currentTime,
      stalls: window.__stalls,
      width: v.videoWidth,
      height: v.videoHeight,
      dropped: v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().droppedVideoFrames : null,
      stats: document.getElementById("player-stats")?.textContent ?? "",
      offload: document.getElementById("v-offload")?.textContent ?? "",
    };
  });
  console.log(
    JSON.stringify({
      ok: true,
      startup_ms: startupMs,
      advanced_s: state.t - t1,
      stalls: state.stalls,
      frames_differ: !shot1.equals(shot2),
      width: state.width,
      height: state.height,
      dropped_frames: state.dropped,
      player_stats: state.stats,
      offload: state.offload,
      logs: logs.slice(-10),
    }),
  );
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e), logs: logs.slice(-20) }));
} finally {
  await browser.close();
}
