#include "store/sqlite.h"

#include "core/strings.h"

namespace mitmd::store {

Status Exec(sqlite3* db, std::string_view sql, std::string_view what) {
  char* err = nullptr;
  std::string text(sql);
  if (sqlite3_exec(db, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    return Fail(what.empty() ? StrCat("SQLite: ", message) : StrCat(what, ": ", message));
  }
  return {};
}

Result<Stmt> Stmt::Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s,
                         nullptr) != SQLITE_OK) {
    return Fail(StrCat("SQLite cannot prepare a statement: ", sqlite3_errmsg(db)));
  }
  Stmt out;
  out.stmt_.reset(s);
  return out;
}

Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_.get(), i, v);
  return *this;
}

Stmt& Stmt::Bind(int i, double v) {
  sqlite3_bind_double(stmt_.get(), i, v);
  return *this;
}

Stmt& Stmt::Bind(int i, std::string_view v) {
  sqlite3_bind_text(stmt_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::BindBlob(int i, std::string_view v) {
  sqlite3_bind_blob(stmt_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

// SQLite binds NULL for a null pointer; an empty view binds the empty string, as Bind does.
Stmt& Stmt::BindRef(int i, std::string_view v) {
  sqlite3_bind_text(stmt_.get(), i, v.data() ? v.data() : "", static_cast<int>(v.size()), SQLITE_STATIC);
  return *this;
}

Stmt& Stmt::BindBlobRef(int i, std::string_view v) {
  sqlite3_bind_blob(stmt_.get(), i, v.data() ? v.data() : "", static_cast<int>(v.size()), SQLITE_STATIC);
  return *this;
}

Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(stmt_.get(), i);
  return *this;
}

int Stmt::Step() { return sqlite3_step(stmt_.get()); }

Status Stmt::Run() {
  int rc;
  while ((rc = Step()) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) {
    std::string m = message();
    Reset();
    return Fail(StrCat("SQLite: ", m));
  }
  Reset();
  return {};
}

void Stmt::Reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
}

std::string_view Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_.get(), col);
  if (p == nullptr) return {};
  return {reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), col))};
}

std::string Stmt::message() const { return sqlite3_errmsg(sqlite3_db_handle(stmt_.get())); }

}  // namespace mitmd::store
