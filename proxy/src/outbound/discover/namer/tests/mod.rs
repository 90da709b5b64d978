mod admin;
mod delegation;
mod files;
mod live;
