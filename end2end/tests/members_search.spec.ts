import { expect, Locator, Page, test } from '@playwright/test';
import { ADMIN, hydrated, signedIn } from './helpers';

// "The members search loses nothing": what a quick typist does in Search members
// before the page has hydrated, or just before opening a member, is never dropped.

/**
 * Holds every WebAssembly download (the main module and the lazily loaded route chunks)
 * until `release` is called: the page is the server's HTML alone until then, as on a
 * slow network where the WebAssembly arrives well after the page. (A gate rather than a
 * fixed delay, so that "typed before hydration" is certain, not a matter of timing.)
 */
async function holdWebAssembly(page: Page): Promise<() => void> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  await page.route('**/*.wasm', async (route) => {
    await released;
    // A request of a page navigated away from meanwhile is gone: nothing to continue.
    await route.continue().catch(() => {});
  });
  return release;
}

async function notHydrated(page: Page) {
  await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
}

/** Every row of the Members table matches `query` (a word of the name, or the email, starts with it). */
async function onlyMatchingRows(table: Locator, query: string) {
  const rows = table.locator('tbody tr');
  await expect(rows.first()).toBeVisible();
  for (const row of await rows.all()) {
    const name = (await row.locator('td').nth(1).innerText()).toLowerCase();
    const email = (await row.locator('td').nth(2).innerText()).toLowerCase();
    expect(name.split(' ').some((word) => word.startsWith(query)) || email.startsWith(query)).toBeTruthy();
  }
}

test('text typed into Search members before the page hydrates is searched for once it has', async ({ page }) => {
  await signedIn(page, ADMIN.email);
  const release = await holdWebAssembly(page);
  await page.goto('/admin/members', { waitUntil: 'domcontentloaded' });
  const table = page.getByRole('table', { name: 'Members' });
  await expect(table.getByRole('row')).toHaveCount(26); // the header and 25 members, unfiltered
  const search = page.getByRole('searchbox', { name: 'Search members' });
  await search.pressSequentially('target');
  await notHydrated(page);

  release();
  await hydrated(page);
  // Searched without typing again: the hydrated page starts from what is in the box.
  await expect(page).toHaveURL(/\/admin\/members\?q=target$/);
  await expect(search).toHaveValue('target');
  await expect(table.getByRole('link', { name: 'Tom Target' })).toBeVisible();
  await expect(table.getByRole('row')).not.toHaveCount(26);
  await onlyMatchingRows(table, 'target');
});

test('Enter in Search members searches before the page has hydrated, the sort kept', async ({ page }) => {
  await signedIn(page, ADMIN.email);
  const release = await holdWebAssembly(page);
  await page.goto('/admin/members?sort=email&dir=desc', { waitUntil: 'domcontentloaded' });
  const table = page.getByRole('table', { name: 'Members' });
  await expect(table.getByRole('row')).toHaveCount(26);
  const search = page.getByRole('searchbox', { name: 'Search members' });
  await search.fill('target');
  await search.press('Enter');

  // The browser submitted the plain form itself: no WebAssembly has run yet.
  await expect(page).toHaveURL(/[?&]q=target(&|$)/);
  await expect(page).toHaveURL(/[?&]sort=email(&|$)/);
  await expect(page).toHaveURL(/[?&]dir=desc(&|$)/);
  await expect(table.getByRole('link', { name: 'Tom Target' })).toBeVisible();
  await onlyMatchingRows(table, 'target');
  await expect(search).toHaveValue('target');
  await notHydrated(page);

  // Once it hydrates, the page keeps that search.
  release();
  await hydrated(page);
  await expect(page).toHaveURL(/[?&]q=target(&|$)/);
  await expect(search).toHaveValue('target');
  await expect(table.getByRole('link', { name: 'Tom Target' })).toBeVisible();
  await onlyMatchingRows(table, 'target');
});

test('a member opened within the search delay of the last keystroke stays open', async ({ page }) => {
  await signedIn(page, ADMIN.email);
  await page.goto('/admin/members');
  await hydrated(page);
  const table = page.getByRole('table', { name: 'Members' });
  const search = page.getByRole('searchbox', { name: 'Search members' });
  // The first row's member, and a search their row survives (the first word of the name).
  const link = table.locator('tbody tr').first().getByRole('link');
  const name = (await link.innerText()).trim();
  const href = (await link.getAttribute('href')) ?? '';
  const id = /^\/admin\/members\/(\d+)$/.exec(href)?.[1];
  expect(id, `the first row's link is ${href}`).toBeTruthy();
  const query = name.split(' ')[0].toLowerCase();

  // The keystroke and the click in one go, so the click certainly lands within the
  // 250 ms the search waits for typing to pause.
  await search.focus();
  const anchor = await link.elementHandle();
  await search.evaluate(
    (box, { anchor, text }) => {
      (box as HTMLInputElement).value = text;
      box.dispatchEvent(new Event('input', { bubbles: true }));
      (anchor as HTMLAnchorElement).click();
    },
    { anchor, text: query },
  );

  const blade = page.getByRole('dialog', { name: 'User information' });
  const bladeUrl = new RegExp(`/admin/members/${id}$`);
  await expect(blade).toBeVisible();
  await expect(page).toHaveURL(bladeUrl);
  // Well past the search delay: the search that was pending never throws the blade away.
  await page.waitForTimeout(1000);
  await expect(blade).toBeVisible();
  await expect(page).toHaveURL(bladeUrl);
  await expect(table.getByRole('link', { name, exact: true }).first()).toBeVisible();
});
