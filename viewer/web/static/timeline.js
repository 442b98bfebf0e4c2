// The timeline in the page's bar: scrub back through the server's recording, one click back to live.
// While the page shows the past it says so (a banner with the shown time, an amber frame) and
// disables commands; the server holds this page's live updates until it asks for live again.

const $ = (id) => document.getElementById(id);

function clock(t) {
  return new Date(t * 1000).toLocaleString();
}

export class Timeline {
  constructor(send) {
    this.send = send;
    this.since = null;
    this.at = null; // null: live
    this.pending = null;
    const slider = $('timeline');
    slider.addEventListener('input', () => this.scrub(Number(slider.value)));
    $('go-live').addEventListener('click', () => this.live());
  }

  /** From the server's status: is it recording, and since when. */
  status(history) {
    const box = $('timeline-box');
    if (!history || !history.recording || !history.since) { box.hidden = true; return; }
    this.since = history.since;
    box.hidden = false;
    if (this.at === null) $('timeline').value = 1000;
  }

  /** Slider position (0..1000) to an instant between the start of the recording and now. */
  scrub(position) {
    if (this.since === null) return;
    const now = Date.now() / 1000;
    if (position >= 1000) { this.live(); return; }
    const at = this.since + (now - this.since) * (position / 1000);
    clearTimeout(this.pending);
    this.pending = setTimeout(() => this.send({ type: 'seek', t: at }), 150); // one request per pause
  }

  live() {
    clearTimeout(this.pending);
    this.send({ type: 'live' });
    $('timeline').value = 1000;
  }

  /** The server sent the twin at a past instant. */
  showPast(msg) {
    this.at = msg.at;
    if (this.since !== null) {
      const now = Date.now() / 1000;
      $('timeline').value = Math.round(1000 * (msg.at - this.since) / Math.max(now - this.since, 1));
    }
    document.body.classList.add('past');
    const banner = $('past-banner');
    banner.hidden = false;
    banner.textContent = `PAST: the plant as it was at ${clock(msg.at)} · commands are disabled`;
  }

  /** A snapshot of the present arrived: live again. */
  showLive() {
    if (this.at === null) return;
    this.at = null;
    document.body.classList.remove('past');
    $('past-banner').hidden = true;
  }
}
