import { expect, Page, test } from '@playwright/test';
import { ADMIN, hydrated, MEMBER, signedIn } from './helpers';

async function focusedIsInside(page: Page, selector: string) {
  return page.evaluate((sel) => {
    const container = document.querySelector(sel);
    return !!container && container.contains(document.activeElement);
  }, selector);
}

test('the blade opens from the list with its own address, takes focus, and Escape gives it back', async ({ page }) => {
  await signedIn(page, ADMIN.email);
  await page.goto('/admin/members?q=ann');
  await hydrated(page);
  const table = page.getByRole('table', { name: 'Members' });
  const link = table.getByRole('link', { name: MEMBER.name });
  await link.click();
  const blade = page.getByRole('dialog', { name: 'User information' });
  await expect(blade).toBeVisible();
  await expect(page).toHaveURL(/\/admin\/members\/\d+\?q=ann$/);
  await expect(blade.getByText(MEMBER.email)).toBeVisible();
  await expect(blade.getByRole('toolbar', { name: 'Member actions' }).getByRole('button', { name: 'Edit' })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'User information' })).toBeFocused();
  // The list stays under it.
  await expect(table).toBeVisible();

  await page.keyboard.press('Escape');
  await expect(blade).toHaveCount(0);
  await expect(page).toHaveURL(/\/admin\/members\?q=ann$/);
  await expect(link).toBeFocused();

  // The close button does the same.
  await link.click();
  await expect(blade).toBeVisible();
  await blade.getByRole('button', { name: 'Close' }).click();
  await expect(blade).toHaveCount(0);
});

test('a deep link to /admin/members/{id} opens the blade over the list, and survives a reload', async ({ page }) => {
  await signedIn(page, ADMIN.email);
  const response = await page.goto('/admin/members/2');
  expect(response?.status()).toBe(200);
  await hydrated(page);
  const blade = page.getByRole('dialog', { name: 'User information' });
  await expect(blade.getByText(MEMBER.email)).toBeVisible();
  await expect(page.getByRole('table', { name: 'Members' })).toBeVisible();
  await page.reload();
  await hydrated(page);
  await expect(blade.getByText(MEMBER.email)).toBeVisible();
  const missing = await page.goto('/admin/members/987654');
  expect(missing?.status()).toBe(404);
  await expect(page.getByRole('dialog', { name: 'User information' }).getByText('No member has the ID 987654.')).toBeVisible();
});

test('an admin edits a member in the blade and sees the change in the list; errors appear beside their field', async ({ page }) => {
  await signedIn(page, ADMIN.email);
  await page.goto('/admin/members/10');
  await hydrated(page);
  const blade = page.getByRole('dialog', { name: 'User information' });
  await blade.getByRole('button', { name: 'Edit' }).click();

  // A bad email: the message is next to the email field, and nothing is saved.
  const email = blade.getByLabel('Email');
  const original = await email.inputValue();
  await email.fill('not-an-email');
  await blade.getByRole('button', { name: 'Save' }).click();
  await expect(blade.locator('#edit-email-error')).toHaveText(/Enter an email address like/);
  await expect(email).toHaveAttribute('aria-invalid', 'true');
  await email.fill(original);

  // Proxy login permission: IDs, with the names shown back; unknown IDs are refused.
  const proxies = blade.getByLabel('Proxy login permission', { exact: true });
  await proxies.fill('2, 987654');
  await expect(blade.getByText('#2 Ann Lee')).toBeVisible();
  await expect(blade.getByText('#987654 — no such member')).toBeVisible();
  await blade.getByRole('button', { name: 'Save' }).click();
  await expect(blade.locator('#edit-proxies-error')).toHaveText('No member has the ID 987654.');
  await proxies.fill('2');

  const name = blade.getByLabel('Display name');
  await name.fill('Zed Edited-Name');
  await blade.getByRole('button', { name: 'Save' }).click();
  await expect(blade.getByRole('button', { name: 'Save' })).toHaveCount(0);
  await expect(blade.getByText('#2 Ann Lee')).toBeVisible();
  const table = page.getByRole('table', { name: 'Members' });
  await page.getByRole('searchbox', { name: 'Search members' }).fill('zed edited');
  await expect(table.getByRole('link', { name: 'Zed Edited-Name' })).toBeVisible();
});

test('keyboard only: reach a member, open the blade, close it with Escape', async ({ page }) => {
  await signedIn(page, ADMIN.email);
  await page.goto('/admin/members');
  await hydrated(page);
  await page.getByRole('searchbox', { name: 'Search members' }).focus();
  let reached = false;
  for (let i = 0; i < 25 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.classList.contains('member-link') ?? false);
  }
  expect(reached).toBeTruthy();
  const name = await page.evaluate(() => (document.activeElement as HTMLElement).innerText);
  await page.keyboard.press('Enter');
  const blade = page.getByRole('dialog', { name: 'User information' });
  await expect(blade).toBeVisible();
  await expect(blade.getByText(name).first()).toBeVisible();
  expect(await focusedIsInside(page, '[role="dialog"]')).toBeTruthy();
  await page.keyboard.press('Escape');
  await expect(blade).toHaveCount(0);
  await expect(page.getByRole('table', { name: 'Members' }).getByRole('link', { name })).toBeFocused();
});
