#pragma once
// Thin ownership wrappers over the SQLite C API: a connection and a prepared statement, errors
// as values carrying SQLite's own message.

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace mitmd::store {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqlitePtr = std::unique_ptr<sqlite3, SqliteCloser>;

// Runs |sql| (one or more statements, no results). The error names |what| and SQLite's message.
Status Exec(sqlite3* db, std::string_view sql, std::string_view what = "");

class Stmt {
 public:
  Stmt() = default;
  static Result<Stmt> Prepare(sqlite3* db, std::string_view sql);

  // Binds are 1-based, as in SQLite. Text and blobs are copied.
  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, double v);
  Stmt& Bind(int i, std::string_view v);
  Stmt& BindBlob(int i, std::string_view v);
  Stmt& BindNull(int i);
  // Without the copy, for the writer's hot statements: |v| must stay valid until the statement
  // is reset or bound again.
  Stmt& BindRef(int i, std::string_view v);
  Stmt& BindBlobRef(int i, std::string_view v);

  // SQLITE_ROW, SQLITE_DONE or an error code (then message() says why).
  int Step();
  // Steps to the end; fails with the connection's message.
  Status Run();
  void Reset();

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  double Double(int col) const { return sqlite3_column_double(stmt_.get(), col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }
  std::string_view Text(int col) const;
  std::string message() const;
  sqlite3_stmt* get() const { return stmt_.get(); }
  explicit operator bool() const { return stmt_ != nullptr; }

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
};

}  // namespace mitmd::store
