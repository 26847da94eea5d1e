//! The first super user: made by `behalf init-admin`, and by `behalf serve` on a new
//! database (the demo's first step). Its password is random and printed once.

use app::{
    audit_action::AuditAction,
    clock::Millis,
    db::Db,
    error::AppError,
    members::directory::{create_member, NewMember},
    password::{hasher::PasswordHasher, Password},
    role::Role,
};

use crate::startup::command_record;

/// Creates the super user `email` ("Administrator") with a random password, recorded
/// as made by the command `via`, and returns the password. `Conflict` when a member
/// with that email exists.
pub async fn create_super_user(db: &Db, now: Millis, email: &str, via: &str) -> Result<String, AppError> {
    let password = random_password();
    let new = NewMember {
        email: email.to_string(),
        display_name: "Administrator".to_string(),
        role: Role::SuperUser,
        admin_access: true,
        login_enabled: true,
    };
    create_member(
        db,
        &PasswordHasher::new(1),
        now,
        new,
        Password::new(password.clone()),
        Some(command_record(AuditAction::MemberCreated, via)),
    )
    .await?;
    Ok(password)
}

/// Prints a new super user's credentials, the one time they are shown (`init-admin`,
/// and `serve` on a new database).
pub fn print_super_user(email: &str, password: &str) {
    println!("Created the first super user. Sign in with:");
    println!("  Email:    {email}");
    println!("  Password: {password}");
    println!("(Shown only this once.)");
}

/// 20 characters from an unambiguous alphabet (about 100 bits).
fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
