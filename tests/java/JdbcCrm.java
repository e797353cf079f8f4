// A CRM as pgjdbc connects it, with the driver's defaults: run through unscharf by
// tests/it/clients.rs (`java -cp postgresql.jar JdbcCrm.java URL USER PASSWORD`). Prints one line
// per result row or error; the test reads them.
import java.sql.*;

public class JdbcCrm {
    static void print(String tag, ResultSet rs) throws SQLException {
        int n = rs.getMetaData().getColumnCount();
        while (rs.next()) {
            StringBuilder line = new StringBuilder(tag);
            for (int i = 1; i <= n; i++) {
                line.append(i == 1 ? " " : "|").append(rs.getString(i));
            }
            System.out.println(line);
        }
    }

    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0], args[1], args[2])) {
            try (Statement s = c.createStatement()) {
                print("SETTINGS", s.executeQuery("SELECT current_setting('DateStyle'), current_setting('extra_float_digits')"));
                print("STAR", s.executeQuery("SELECT * FROM stadtwerke.customers WHERE customer_no = 1001"));
            }
            // Past prepareThreshold (5) pgjdbc names the statement on the server and asks for
            // binary results of the types it knows, a date among them.
            try (PreparedStatement p = c.prepareStatement(
                    "SELECT customer_no, birth_date, phone FROM stadtwerke.customers WHERE customer_no = ?")) {
                for (int i = 0; i < 7; i++) {
                    p.setInt(1, 1001);
                    try (ResultSet rs = p.executeQuery()) {
                        print("PREPARED" + i, rs);
                    }
                }
            }
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.executeQuery("SELECT name FROM zeitung.leads");
                System.out.println("UNEXPECTED SUCCESS");
            } catch (SQLException e) {
                System.out.println("ERROR " + e.getSQLState());
            }
            c.rollback();
            try (Statement s = c.createStatement()) {
                print("AFTER", s.executeQuery("SELECT count(*) FROM stadtwerke.tickets"));
            }
            System.out.println("DONE");
        }
    }
}
