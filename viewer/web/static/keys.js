// Keyboard paths: Esc closes what is open (login, legend, drawer), clears the search or
// the selection (focus returns to the device in the list); F flies to the selection,
// Home shows the whole site, / goes to the search box.

export function setupKeys({ $, select, selected, focusDevice, fit, showDevices, narrow, deviceList }) {
  document.addEventListener('keydown', (e) => {
    const typing = e.target && (e.target.tagName === 'INPUT' || e.target.tagName === 'SELECT' || e.target.tagName === 'TEXTAREA');
    if (e.key === 'Escape') {
      if (!$('login').hidden) { $('login').hidden = true; $('login-open').focus(); return; }
      if (!$('legend').hidden) { $('legend').hidden = true; $('legend-toggle').setAttribute('aria-expanded', 'false'); $('legend-toggle').focus(); return; }
      if (narrow() && !$('devices').hidden) { showDevices(false); $('devices-toggle').focus(); return; }
      if (typing && e.target.id === 'search' && e.target.value) { e.target.value = ''; deviceList().render(); return; }
      const id = selected();
      if (id) {
        select(null);
        const item = document.querySelector(`#device-tree button[data-device="${CSS.escape(id)}"]`);
        if (item) item.focus();
      }
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === 'f' || e.key === 'F') {
      if (focusDevice()) e.preventDefault();
    } else if (e.key === 'Home') {
      fit();
      e.preventDefault();
    } else if (e.key === '/') {
      showDevices(true);
      $('search').focus();
      e.preventDefault();
    }
  });
}
