// The tsockify built-in viewer: noVNC's RFB client pointed back at the tsockify that served
// this page. Loaded as a plain ES module; noVNC's modules come from the same server under
// novnc/ (see viewerMounts() in @tsockify/viewer). Paths are relative so the page also works
// behind a reverse proxy that mounts tsockify under a sub-path.
import RFB from './novnc/core/rfb.js';

const statusEl = document.getElementById('status');
const reconnectBtn = document.getElementById('reconnect');
const screenEl = document.getElementById('screen');
const form = document.getElementById('credentials');
const usernameRow = document.getElementById('username-row');
const usernameInput = document.getElementById('username');
const passwordInput = document.getElementById('password');

/** @type {RFB | null} */
let rfb = null;

/**
 * ws: or wss: matching the page, same host and port, path `websockify` next to this page, and
 * the page's `token` passed through (`/?token=X` → `websockify?token=X`).
 */
export function websocketUrl(pageHref) {
  const page = new URL(pageHref);
  const url = new URL('websockify', page);
  url.protocol = page.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  const token = page.searchParams.get('token');
  if (token) url.searchParams.set('token', token);
  return url.href;
}

function setStatus(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}

function showCredentials(types) {
  const wantsUser = types.includes('username');
  usernameRow.hidden = !wantsUser;
  passwordInput.value = '';
  form.hidden = false;
  (wantsUser ? usernameInput : passwordInput).focus();
}

function hideCredentials() {
  form.hidden = true;
  passwordInput.value = '';
}

const CLOSE_NAMES = {
  1000: 'closed normally',
  1001: 'the proxy is going away',
  1002: 'protocol error',
  1003: 'unsupported data',
  1008: 'refused by policy',
  1009: 'message too big',
  1011: 'the connection to the VNC server failed',
};

/** The status line after a disconnect: `failed` unless the session ended in an orderly way. */
function explainEnd(a, clean) {
  if (a.security) {
    const why = a.security.reason || `security result ${a.security.status}`;
    return ['failed', `Authentication failed: ${why}.`];
  }
  if (!a.opened) {
    return ['failed', `Could not open the connection to ${location.host}: the proxy refused it or could not reach the VNC server (its log says why).`];
  }
  const c = a.close;
  if (c && c.code === 1006) return ['failed', 'Connection lost: the proxy went away without closing the connection.'];
  if (c && c.code !== 1005) {
    const text = `Disconnected: ${c.reason || CLOSE_NAMES[c.code] || 'closed'} (code ${c.code}).`;
    return [clean && (c.code === 1000 || c.code === 1001) ? 'disconnected' : 'failed', text];
  }
  return clean ? ['disconnected', 'Disconnected.'] : ['failed', 'Disconnected after an error.'];
}

function connect() {
  if (rfb) return;
  hideCredentials();
  reconnectBtn.hidden = true;
  // What happened during this attempt, for the "disconnected because ..." line. noVNC's own
  // `disconnect` event only says clean or not; the WebSocket close code and reason (e.g. 1011
  // "Failed to connect to downstream server") and the server's security failure reason are
  // what tell a user what to fix.
  const current = { opened: false, close: null, security: null, desktopName: '', secure: location.protocol === 'https:' };
  setStatus('connecting', `Connecting to ${location.host}…`);

  let ws;
  try {
    // No subprotocol, as current noVNC does; tsockify and websockify both accept that.
    ws = new WebSocket(websocketUrl(location.href));
    // Listeners go on before noVNC attaches its own handlers, so the close details are known
    // by the time noVNC reports the disconnect.
    ws.addEventListener('open', () => { current.opened = true; });
    ws.addEventListener('close', (e) => { current.close = { code: e.code, reason: e.reason }; });
    rfb = new RFB(screenEl, ws);
  } catch (err) {
    rfb = null;
    setStatus('failed', `Could not start the viewer: ${err && err.message ? err.message : err}`);
    reconnectBtn.hidden = false;
    return;
  }

  rfb.scaleViewport = true;
  rfb.addEventListener('connect', () => {
    const name = current.desktopName;
    setStatus('connected', `Connected${name ? ` to ${name}` : ''}${current.secure ? ' (encrypted)' : ''}`);
    hideCredentials();
    rfb.focus();
  });
  // noVNC reports the desktop name during the handshake, before 'connect'.
  rfb.addEventListener('desktopname', (e) => {
    current.desktopName = e.detail.name;
    document.title = `${e.detail.name} – tsockify`;
  });
  rfb.addEventListener('credentialsrequired', (e) => {
    setStatus('credentials', 'The VNC server asks for a password.');
    showCredentials(e.detail.types || ['password']);
  });
  rfb.addEventListener('securityfailure', (e) => {
    current.security = { status: e.detail.status, reason: e.detail.reason };
  });
  rfb.addEventListener('disconnect', (e) => {
    rfb = null;
    hideCredentials();
    setStatus(...explainEnd(current, e.detail.clean));
    reconnectBtn.hidden = false;
  });
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  if (!rfb) return;
  const creds = { password: passwordInput.value };
  if (!usernameRow.hidden) creds.username = usernameInput.value;
  hideCredentials();
  setStatus('connecting', 'Checking the password…');
  rfb.sendCredentials(creds);
});

reconnectBtn.addEventListener('click', connect);

connect();
