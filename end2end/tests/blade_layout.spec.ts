import { expect, Locator, Page, test } from '@playwright/test';
import { ADMIN, hydrated, MEMBER, signedIn } from './helpers';

// The User information blade must never cover the header: while it is open, "Login as" and
// "Sign out" stay visible and clickable, on a laptop and on a phone. And, as in Virto, a click
// anywhere on a list's row opens the blade, not only a click on the name.

/** Fails unless the header's button `name` is visible and would get a click where it is: a
 *  trial click runs every actionability check, the hit test included, without clicking, so
 *  it fails when another element (the blade) lies over the button. */
async function expectClickable(page: Page, name: string) {
  const button = page.getByRole('banner').getByRole('button', { name, exact: true });
  await expect(button).toBeVisible();
  await button.click({ trial: true, timeout: 5_000 });
}

/** With the blade open: both header controls can be clicked, and the blade starts below the header. */
async function expectHeaderReachable(page: Page) {
  const blade = page.getByRole('dialog', { name: 'User information' });
  await expect(blade).toBeVisible();
  await expectClickable(page, 'Login as');
  await expectClickable(page, 'Sign out');
  const header = await page.getByRole('banner').boundingBox();
  const panel = await blade.boundingBox();
  expect(header, 'the header is on the page').not.toBeNull();
  expect(panel, 'the blade is on the page').not.toBeNull();
  expect(panel!.y).toBeGreaterThanOrEqual(header!.y + header!.height - 1);
}

/** Opens Ann's blade from the members list with a click on her email cell (not on her name). */
async function openFromRow(page: Page): Promise<{ blade: Locator; link: Locator }> {
  await page.goto(`/admin/members?q=${encodeURIComponent(MEMBER.email)}`);
  await hydrated(page);
  const table = page.getByRole('table', { name: 'Members' });
  const link = table.getByRole('link', { name: MEMBER.name, exact: true });
  const id = (await link.getAttribute('href'))!.match(/\/admin\/members\/(\d+)/)![1];
  const cell = table.getByRole('cell', { name: MEMBER.email, exact: true });
  await expect(cell).toBeVisible();
  await expect(cell).toHaveCSS('cursor', 'pointer');
  // The row's handler is attached when the list hydrates: click again if the first click came first.
  await expect(async () => {
    await cell.click();
    await expect(page).toHaveURL(new RegExp(`/admin/members/${id}\\?q=`), { timeout: 1_000 });
  }).toPass({ timeout: 10_000 });
  const blade = page.getByRole('dialog', { name: 'User information' });
  await expect(blade).toBeVisible();
  await expect(blade.getByText(MEMBER.email)).toBeVisible();
  return { blade, link };
}

test.describe('at 1280×800', () => {
  test.use({ viewport: { width: 1280, height: 800 } });

  test('a click on a member row opens the blade, and Login as and Sign out stay clickable beside it', async ({ page }) => {
    await signedIn(page, ADMIN.email);
    const { link } = await openFromRow(page);
    await expect(page.getByRole('heading', { name: 'User information' })).toBeFocused();
    await expect(page.getByRole('table', { name: 'Members' })).toBeVisible();
    await expectHeaderReachable(page);

    // Narrowed to a phone with the blade open: still reachable.
    await page.setViewportSize({ width: 390, height: 844 });
    await expectHeaderReachable(page);

    // Escape gives focus back to the row's link, as when the blade was opened from it.
    await page.keyboard.press('Escape');
    await expect(page.getByRole('dialog', { name: 'User information' })).toHaveCount(0);
    await expect(link).toBeFocused();
  });

  test('a click on a group member row opens the same blade', async ({ page }) => {
    await signedIn(page, ADMIN.email);
    await page.goto('/admin/groups');
    await hydrated(page);
    await page.getByRole('table', { name: 'Groups' }).getByRole('link', { name: 'Acme Retail' }).click();
    const members = page.getByRole('table', { name: 'Group members' });
    const row = members.getByRole('row').nth(1); // the first member, under the header row
    await expect(row).toBeVisible();
    const href = (await row.getByRole('link').first().getAttribute('href'))!;
    expect(href).toMatch(/^\/admin\/groups\/\d+\/members\/\d+$/);
    // The email cell: not the name link, not the Remove button.
    await row.getByRole('cell').nth(2).click();
    await expect(page).toHaveURL(new RegExp(`${href}$`));
    await expect(page.getByRole('dialog', { name: 'User information' })).toBeVisible();
    await expectHeaderReachable(page);
  });
});

test.describe('on a phone, 390×844', () => {
  test.use({ viewport: { width: 390, height: 844 } });

  test('the blade opened from a row leaves Login as and Sign out clickable, and Login as opens on screen', async ({ page }) => {
    await signedIn(page, ADMIN.email);
    await openFromRow(page);
    await expectHeaderReachable(page);

    const loginAs = page.getByRole('banner').getByRole('button', { name: 'Login as', exact: true });
    await loginAs.click();
    await expect(loginAs).toHaveAttribute('aria-expanded', 'true');
    // The menu (the element the button controls) opens whole on the screen, not off its edge.
    const menu = page.locator(`#${await loginAs.getAttribute('aria-controls')}`);
    await expect(menu).toBeInViewport({ ratio: 1 });
  });
});
